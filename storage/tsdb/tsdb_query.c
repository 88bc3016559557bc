/* tsdb_query: the TSDB's read paths (samples, series selection, label names and
 * values, metadata, exemplars, figures). Key layout at the top of tsdb.c.
 *
 * Readers copy what they need from the head under mu, then read LevelDB without it.
 * Reading memory first matters: a chunk written meanwhile is then either in the copy
 * or already on disk when we look (the merge removes the duplicate). */
#include "tsdb_int.h"

#include "../base/vg_alloc.h"
#include "../base/vg_arena.h"
#include "../base/vg_sort.h"
#include "index.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/* Block size of the arenas that hold a query's results. */
#define QUERY_ARENA_BYTES ((size_t)64 << 10)

static int dir_usage(const char *dir, uint64_t *bytes)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    char path[4096];
    struct dirent *e;
    while ((e = readdir(d))) {
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
            *bytes += (uint64_t)st.st_size;
    }
    closedir(d);
    return 0;
}

/* ---- reading ---- */

/* Adds the samples of one stored chunk within [mint, maxt] to a. A short window (an
 * instant query's 5 minutes) usually wants the last few of a chunk's 120 samples:
 * chunk_iter_skip_before passes over the others several times faster than decoding
 * them one by one, which was half of such a query's cost. */
static int decode_chunk(struct tsdb *db, uint64_t id, struct head_samples *a,
                        const unsigned char *v, size_t vl, int64_t mint, int64_t maxt,
                        int64_t start, struct vg_err *err)
{
    struct chunk_iter it;
    chunk_iter_init(&it, v, vl);
    int64_t t;
    double x;
    while (chunk_next(&it, &t, &x)) {
        if (t > maxt)
            return 0;
        if (t < mint)
            chunk_iter_skip_before(&it, mint);
        else if (head_samples_push(a, t, x) != 0)
            return tsdb_nomem(err, "reading samples");
    }
    if (it.err)
        return vg_err_set(err, VG_EIO, "tsdb %s: corrupt chunk of series %" PRIu64 " at %" PRId64,
                          db->dir, id, start);
    return 0;
}

struct tsdb_reader {
    struct tsdb *db;
    struct kv_iter *it;   /* NULL until the first read */
    uint64_t persisted;   /* db->chunks_persisted when it was made */
    struct vg_buf pending; /* the held-back in-order chunk (see tsdb_reader_read) */
    bool placed;          /* it is where the last read left it (see reader_goto) */
};

/* Most keys reader_goto steps over before it gives up and seeks. */
#define GOTO_MAX_STEPS 32

/* Moves it to the first key >= key (a chunk key of series id). A LevelDB seek
 * binary-searches every level and was a third of an instant query's cost; a query that
 * reads its series in increasing id order (querier_tsdb does) mostly finds the wanted
 * key a few chunks after where the previous read of the adjacent id stopped, and
 * stepping there with next is several times cheaper. Stepping is only sound from a key
 * known to be below key (then the first key reached that is >= key is the answer), so
 * anything else seeks. */
static void reader_goto(struct tsdb_reader *r, uint64_t id, const unsigned char *key,
                        size_t klen)
{
    struct kv_iter *it = r->it;
    for (int i = 0; r->placed && i < GOTO_MAX_STEPS && kv_iter_valid(it); i++) {
        size_t kl;
        const char *k = kv_iter_key(it, &kl);
        int c = memcmp(k, key, kl < klen ? kl : klen);
        if (c > 0 || (c == 0 && kl >= klen)) {
            if (i > 0)
                return;
            break; /* already at or past key: where it belongs is unknown */
        }
        /* Only worth stepping within this series or from the one just before it. */
        if (i == 0 && (kl < 9 || k[0] != 'C' || tsdb_get_u64be(k + 1) + 1 < id))
            break;
        kv_iter_next(it);
    }
    kv_iter_seek(it, key, klen);
}

struct tsdb_reader *tsdb_reader_new(struct tsdb *db)
{
    struct tsdb_reader *r = vg_calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->db = db;
    vg_buf_init(&r->pending);
    return r;
}

void tsdb_reader_free(struct tsdb_reader *r)
{
    if (!r)
        return;
    kv_iter_free(r->it);
    vg_buf_free(&r->pending);
    vg_free(r);
}

int tsdb_read(struct tsdb *db, uint64_t id, int64_t mint, int64_t maxt,
              struct tsdb_sample **out, size_t *n, struct vg_err *err)
{
    *out = NULL;
    *n = 0;
    struct tsdb_reader *r = tsdb_reader_new(db);
    if (!r)
        return tsdb_nomem(err, "reading samples");
    int rc = tsdb_reader_read(r, id, mint, maxt, out, n, err);
    tsdb_reader_free(r);
    return rc;
}

int tsdb_reader_read(struct tsdb_reader *r, uint64_t id, int64_t mint, int64_t maxt,
                     struct tsdb_sample **out, size_t *n, struct vg_err *err)
{
    struct tsdb_sample *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = tsdb_reader_append(r, id, mint, maxt, &buf, &len, &cap, err);
    if (rc || !len) {
        vg_free(buf);
        buf = NULL;
        len = 0;
    }
    *out = buf;
    *n = len;
    return rc;
}

int tsdb_reader_append(struct tsdb_reader *r, uint64_t id, int64_t mint, int64_t maxt,
                       struct tsdb_sample **buf, size_t *len, size_t *cap, struct vg_err *err)
{
    struct tsdb *db = r->db;
    if (mint > maxt)
        return 0;
    /* Samples go straight into the caller's array; this read's part starts at base. */
    const size_t base = *len;
    struct head_samples a = { *buf, *len, *cap };
    pthread_mutex_lock(&db->mu);
    struct head_series *s = head_by_id(&db->head, id);
    int rc = s ? head_collect(s, mint, maxt, &a) : 0;
    uint64_t persisted = db->chunks_persisted;
    pthread_mutex_unlock(&db->mu);
    if (!s || rc) {
        *buf = a.v;
        *cap = a.cap;
        return s ? tsdb_nomem(err, "reading samples") : 0;
    }
    /* Disk after memory: a chunk written meanwhile is then either in our copy or on
     * disk by the time we look (duplicates are removed below). A chunk leaves the head
     * only after its write, and counts in chunks_persisted when it does, so a snapshot
     * made before that count moved may lack a chunk our copy no longer has: take a new
     * one. */
    if (!r->it || persisted != r->persisted) {
        kv_iter_free(r->it);
        r->it = kv_iter_new(db->kv, NULL, true);
        r->persisted = persisted;
        r->placed = false;
    }
    struct kv_iter *it = r->it;
    if (!it) {
        *buf = a.v;
        *cap = a.cap;
        return tsdb_nomem(err, "reading samples");
    }
    unsigned char key[TSDB_CHUNK_KEY_MAX];
    size_t klen = tsdb_chunk_seek_key(key, id, tsdb_sat_sub(mint, HEAD_CHUNK_MAX_SPAN_MS - 1));
    /* In-order chunks of a series never overlap and hold strictly increasing times, so an
     * in-order chunk whose successor starts at or before mint ends before mint: it is
     * held back (copied, as the iterator's value does not outlive next) and decoded only
     * once the next in-order chunk shows it can reach mint. Out-of-order chunks may
     * overlap anything and are always decoded. */
    struct vg_buf pending = r->pending;
    bool have_pending = false;
    int64_t pending_start = 0;
    for (reader_goto(r, id, key, klen); rc == 0 && kv_iter_has_prefix(it, key, 9);
         kv_iter_next(it)) {
        size_t kl, vl;
        const char *k = kv_iter_key(it, &kl);
        int64_t start;
        uint8_t kind;
        if (!tsdb_chunk_key_parse(k, kl, id, &start, &kind))
            continue;
        if (start > maxt)
            break;
        const unsigned char *v = (const unsigned char *)kv_iter_value(it, &vl);
        if (kind != 0) {
            rc = decode_chunk(db, id, &a, v, vl, mint, maxt, start, err);
            continue;
        }
        if (have_pending && start > mint)
            rc = decode_chunk(db, id, &a, (const unsigned char *)pending.p, pending.len, mint,
                              maxt, pending_start, err);
        vg_buf_reset(&pending);
        vg_buf_append(&pending, v, vl);
        have_pending = true;
        pending_start = start;
        if (rc == 0 && vg_buf_failed(&pending))
            rc = tsdb_nomem(err, "reading samples");
    }
    if (rc == 0 && have_pending)
        rc = decode_chunk(db, id, &a, (const unsigned char *)pending.p, pending.len, mint, maxt,
                          pending_start, err);
    r->pending = pending; /* keeps its capacity for the next read */
    /* A LevelDB iterator that failed is no longer valid, so one still valid has no error
     * to report (asking costs a call into LevelDB per series). */
    if (rc == 0 && !kv_iter_valid(it))
        rc = kv_iter_error(it, err);
    r->placed = rc == 0;
    *buf = a.v;
    *cap = a.cap;
    if (rc) {
        kv_iter_free(r->it); /* the next read starts from a fresh iterator */
        r->it = NULL;
        return rc;
    }
    struct head_samples mine = { a.v + base, a.n - base, a.n - base };
    head_samples_sort_unique(&mine);
    *len = base + mine.n;
    return 0;
}

/* ---- selecting series ----
 *
 * The head holds every series with its label pairs interned as symbols (head.h), so a
 * selection is decided in memory: each matcher's verdict on a symbol is worked out once
 * per query (one regex run per distinct label pair, not per series) and a series is
 * judged by OR-ing its symbols' verdict bits. Candidates come from a walk over every
 * series of the head, or, when an '=' matcher holds few series (a symbol's reference
 * count is exactly how many series hold the pair), from that one posting list in
 * LevelDB. A posting key costs about 1,000 instructions to step over, a series of the
 * walk about 50, hence SEL_POSTINGS_RATIO. Before this, every matcher's postings were
 * scanned and intersected: 20,000 keys for a plain metric name. */

/* Verdict of a symbol for matcher i (i < SEL_MAX): bit i when the pair's name is the
 * matcher's, bit SEL_MAX + i when its value matches too. SEL_DONE marks a verdict
 * worked out, SEL_ODD a piece that is not one label pair (never seen with stored label
 * sets, which are validated canonical encodings; such a series is judged from its
 * decoded labels instead). */
#define SEL_MAX 8
#define SEL_ALL ((1u << SEL_MAX) - 1)
#define SEL_DONE (1u << (2 * SEL_MAX))
#define SEL_ODD (1u << (2 * SEL_MAX + 1))
#define SEL_POSTINGS_RATIO 16

struct sel {
    struct matcher *const *ms;
    size_t nms;
    uint32_t *verdict; /* per symbol id; 0 until worked out */
    uint32_t nsyms;
    uint32_t empty; /* matchers that match a missing label ("") */
    uint32_t all;   /* one bit per matcher */
};

/* Splits one canonical label pair (labels.c's encoding) that fills b[0, len). */
static bool pair_split(const char *b, size_t len, struct vg_str *name, struct vg_str *value)
{
    const unsigned char *p = (const unsigned char *)b;
    size_t off = 0;
    struct vg_str *part[2] = { name, value };
    for (int k = 0; k < 2; k++) {
        uint64_t v;
        if (!labels_get_uvarint(p, len, &off, &v) || v > len - off)
            return false;
        *part[k] = (struct vg_str){ b + off, (size_t)v };
        off += (size_t)v;
    }
    return off == len;
}

static uint32_t sel_verdict(struct sel *q, const struct head *h, uint32_t sym)
{
    uint32_t v = q->verdict[sym];
    if (v)
        return v;
    const struct head_sym *y = h->syms[sym];
    struct vg_str name, value;
    v = SEL_DONE;
    if (!pair_split(y->b, y->len, &name, &value)) {
        v |= SEL_ODD;
    } else {
        for (size_t i = 0; i < q->nms; i++) {
            const struct matcher *m = q->ms[i];
            if (!vg_str_eq_c(name, m->name))
                continue;
            v |= 1u << i;
            if (matcher_matches(m, value))
                v |= 1u << (SEL_MAX + i);
        }
    }
    q->verdict[sym] = v;
    return v;
}

/* Slow path for a series with a piece that is not a label pair. */
static bool sel_match_decoded(const struct sel *q, const struct head *h,
                              const struct head_series *s)
{
    char *lbl = vg_malloc(s->lbl_len ? s->lbl_len : 1);
    struct label *ls = vg_malloc((s->nlabels ? s->nlabels : 1) * sizeof *ls);
    int n = -1;
    if (lbl && ls) {
        head_labels_copy(h, s, lbl);
        n = labels_decode(lbl, s->lbl_len, ls, s->nlabels, NULL);
    }
    bool ok = n >= 0;
    for (size_t i = 0; ok && i < q->nms; i++) {
        struct vg_str v = labels_get(ls, (size_t)n, q->ms[i]->name);
        ok = matcher_matches(q->ms[i], v.p ? v : (struct vg_str){ "", 0 });
    }
    vg_free(lbl);
    vg_free(ls);
    return ok;
}

/* Whether series s matches every matcher (called under mu). */
static bool sel_match(struct sel *q, const struct head *h, const struct head_series *s)
{
    uint32_t acc = 0;
    for (uint16_t k = 0; k < s->npieces; k++)
        acc |= sel_verdict(q, h, s->sym[k]);
    if (acc & SEL_ODD)
        return sel_match_decoded(q, h, s);
    uint32_t has = acc & SEL_ALL, ok = (acc >> SEL_MAX) & SEL_ALL;
    return (ok | (q->empty & ~has)) == q->all;
}

/* The head symbol holding exactly the label pair name=value, or NULL (under mu). */
static const struct head_sym *sym_find(const struct head *h, const char *name,
                                       struct vg_str value, struct vg_buf *tmp)
{
    struct label l = { vg_str_c(name), value };
    vg_buf_reset(tmp);
    labels_encode(&l, 1, tmp);
    if (vg_buf_failed(tmp) || !h->sym_cap)
        return NULL;
    uint64_t hv = head_hash(tmp->p, tmp->len);
    size_t mask = h->sym_cap - 1;
    for (size_t i = hv & mask; h->sym_slots[i]; i = (i + 1) & mask) {
        const struct head_sym *y = h->syms[h->sym_slots[i] - 1];
        if (y->hash == hv && y->len == tmp->len && memcmp(y->b, tmp->p, tmp->len) == 0)
            return y;
    }
    return NULL;
}

/* How many series hold a pair m accepts, when that is known exactly: for name="v", and
 * for a regex that is only literals joined by '|' ("GET|POST"; index.c reads such a
 * set's posting lists directly). false for anything else. */
static bool matcher_refs(const struct head *h, const struct matcher *m, struct vg_buf *tmp,
                         size_t *refs)
{
    if (m->matches_empty || (m->op != MATCH_EQ && m->op != MATCH_RE))
        return false;
    if (m->op == MATCH_RE)
        for (size_t i = 0; i < m->value_len; i++) {
            unsigned char c = (unsigned char)m->value[i];
            if (c < 0x20 || (c != '|' && strchr("\\.+*?()[]{}^$", c)) ||
                (c == '|' && (i == 0 || i + 1 == m->value_len || m->value[i + 1] == '|')))
                return false;
        }
    *refs = 0;
    for (size_t i = 0; i < m->value_len;) {
        size_t j = i;
        while (j < m->value_len && (m->op == MATCH_EQ || m->value[j] != '|'))
            j++;
        const struct head_sym *y = sym_find(h, m->name, (struct vg_str){ m->value + i, j - i },
                                            tmp);
        *refs += y ? y->refs : 0;
        i = j + 1;
    }
    return !vg_buf_failed(tmp);
}

/* The matcher whose pairs the fewest series hold (matcher_refs), with that count (under
 * mu); -1 when none is known or the walk over the head is cheaper. */
static long sel_driver(const struct head *h, struct matcher *const *ms, size_t nms,
                       size_t *refs)
{
    struct vg_buf tmp;
    vg_buf_init(&tmp);
    long best = -1;
    *refs = SIZE_MAX;
    for (size_t i = 0; i < nms; i++) {
        size_t r;
        if (matcher_refs(h, ms[i], &tmp, &r) && r < *refs) {
            *refs = r;
            best = (long)i;
        }
    }
    vg_buf_free(&tmp);
    if (best >= 0 && *refs * SEL_POSTINGS_RATIO >= h->count)
        best = -1;
    return best;
}

/* Series picked under mu. Their labels are built after it from the table of the
 * selection's distinct pairs (see rank_syms), or, when that could not be made, decoded
 * from raw, a copy of their label bytes. */
struct picked {
    uint64_t id;
    char *raw;
    uint32_t len;
    uint16_t nlabels;
    uint16_t npieces;
    uint32_t *sym; /* the series' symbol ids, then their ranks (see rank_syms) */
};

struct picks {
    struct picked *v;
    size_t n, cap;
    struct label *pairs; /* pairs[rank - 1]: the distinct pairs, sorted (see rank_syms) */
    size_t npairs;
};

static int pick(struct picks *p, struct vg_arena *ar, const struct head_series *s)
{
    if (p->n == p->cap) {
        size_t ncap = p->cap ? p->cap * 2 : 256;
        struct picked *nv = vg_realloc(p->v, ncap * sizeof *nv);
        if (!nv)
            return VG_ENOMEM;
        p->v = nv;
        p->cap = ncap;
    }
    uint32_t *sym = vg_arena_alloc(ar, (s->npieces ? s->npieces : 1) * sizeof *sym);
    if (!sym)
        return VG_ENOMEM;
    memcpy(sym, s->sym, s->npieces * sizeof *sym);
    p->v[p->n++] = (struct picked){ s->id, NULL, s->lbl_len, s->nlabels, s->npieces, sym };
    return 0;
}

/* ---- ordering the selection by labels ----
 * Comparing label sets pair by pair was a tenth of an instant query over 20,000 series,
 * and decoding each series' label bytes as much again. A selection holds few distinct
 * pairs (hundreds), so they are copied and sorted once and each series' symbol ids
 * replaced by the ranks of its pairs: comparing two label sets is then comparing two
 * short integer arrays, with the same result as labels_cmp (pairs compare by name, then
 * value; interned pairs are equal iff their bytes are), and a series' labels are
 * entries of the pair table. */

struct ranked {
    uint32_t sym;
    struct vg_str name, value;
};

static int cmp_ranked(const void *a, const void *b)
{
    const struct ranked *x = a, *y = b;
    int c = vg_str_cmp(x->name, y->name);
    return c ? c : vg_str_cmp(x->value, y->value);
}

/* Under mu: replaces every picked series' symbol ids with ranks (from 1) and fills
 * p->pairs (copies in ar). false when a piece is not a label pair or memory ran out. */
static bool rank_syms(const struct head *h, struct vg_arena *ar, struct picks *p)
{
    uint32_t *rank = vg_calloc(h->nsyms ? h->nsyms : 1, sizeof *rank);
    struct ranked *d = NULL;
    size_t nd = 0, cap = 0;
    bool ok = rank != NULL;
    for (size_t i = 0; ok && i < p->n; i++) {
        for (uint16_t k = 0; ok && k < p->v[i].npieces; k++) {
            uint32_t y = p->v[i].sym[k];
            if (rank[y])
                continue;
            if (nd == cap) {
                cap = cap ? cap * 2 : 256;
                struct ranked *nv = vg_realloc(d, cap * sizeof *nv);
                ok = nv != NULL;
                if (!ok)
                    break;
                d = nv;
            }
            rank[y] = 1;
            d[nd].sym = y;
            ok = pair_split(h->syms[y]->b, h->syms[y]->len, &d[nd].name, &d[nd].value);
            nd++;
        }
    }
    struct label *pairs = ok ? vg_arena_alloc(ar, (nd ? nd : 1) * sizeof *pairs) : NULL;
    ok = pairs != NULL;
    if (ok && nd > 1)
        qsort(d, nd, sizeof *d, cmp_ranked);
    for (size_t j = 0; ok && j < nd; j++) {
        const struct head_sym *y = h->syms[d[j].sym];
        char *b = vg_arena_alloc(ar, y->len ? y->len : 1);
        ok = b != NULL;
        if (ok) { /* the copy's name and value sit where they sit in the symbol */
            memcpy(b, y->b, y->len);
            pairs[j].name = (struct vg_str){ b + (d[j].name.p - y->b), d[j].name.len };
            pairs[j].value = (struct vg_str){ b + (d[j].value.p - y->b), d[j].value.len };
            rank[d[j].sym] = (uint32_t)j + 1;
        }
    }
    if (ok) {
        for (size_t i = 0; i < p->n; i++)
            for (uint16_t k = 0; k < p->v[i].npieces; k++)
                p->v[i].sym[k] = rank[p->v[i].sym[k]];
        p->pairs = pairs;
        p->npairs = nd;
    }
    vg_free(d);
    vg_free(rank);
    return ok;
}

/* Under mu, after the picking: ranks, or else copies of every picked series' label
 * bytes for labels_decode. */
static int finish_picks(const struct head *h, struct vg_arena *ar, struct picks *p,
                        struct vg_err *err)
{
    if (rank_syms(h, ar, p))
        return 0;
    for (size_t i = 0; i < p->n; i++) {
        const struct head_series *s = head_by_id(h, p->v[i].id);
        char *copy = vg_arena_alloc(ar, s->lbl_len ? s->lbl_len : 1);
        if (!copy)
            return tsdb_nomem(err, "selecting series");
        head_labels_copy(h, s, copy);
        p->v[i].raw = copy;
    }
    return 0;
}

static int cmp_picked(const void *a, const void *b)
{
    const struct picked *x = a, *y = b;
    uint16_t n = x->npieces < y->npieces ? x->npieces : y->npieces;
    for (uint16_t k = 0; k < n; k++)
        if (x->sym[k] != y->sym[k])
            return x->sym[k] < y->sym[k] ? -1 : 1;
    return (x->npieces > y->npieces) - (x->npieces < y->npieces);
}

/* Sorting by ranks without a call per comparison: a series' first 8 ranks packed 16
 * bits each into a 128-bit key (0 past its last piece, below every rank, as a shorter
 * label set sorts first) order the series as cmp_picked does, so a radix sort on the keys
 * does it (vg_sort skips the byte positions where all keys agree, the metric name's, say).
 * Series with more than 8 pieces and equal keys are then sorted with cmp_picked. */

/* Sorts p->v like qsort with cmp_picked; false (nothing changed) when the ranks do not
 * fit 16 bits or memory ran out, then the caller uses qsort. */
static bool sort_picked(struct picks *p, size_t npairs)
{
    if (p->n < 2)
        return true;
    if (npairs >= 0xffff)
        return false;
    struct vg_sort_key *k = vg_malloc(p->n * sizeof *k);
    struct vg_sort_key *tmp = vg_malloc(p->n * sizeof *tmp);
    struct picked *out = vg_malloc(p->n * sizeof *out);
    if (!k || !tmp || !out) {
        vg_free(k);
        vg_free(tmp);
        vg_free(out);
        return false;
    }
    for (size_t i = 0; i < p->n; i++) {
        const struct picked *x = &p->v[i];
        uint64_t w[2] = { 0, 0 };
        for (uint16_t j = 0; j < 8; j++)
            w[j / 4] |= (uint64_t)(j < x->npieces ? x->sym[j] : 0) << (48 - 16 * (j % 4));
        k[i] = (struct vg_sort_key){ .hi = w[0], .lo = w[1], .i = i };
    }
    struct vg_sort_key *sorted = vg_sort_keys(k, tmp, p->n);
    if (!sorted) {
        vg_free(k);
        vg_free(tmp);
        vg_free(out);
        return false;
    }
    for (size_t i = 0; i < p->n; i++)
        out[i] = p->v[sorted[i].i];
    for (size_t i = 0; i < p->n;) { /* runs of equal words with longer label sets */
        size_t j = i + 1;
        bool long_sets = out[i].npieces > 8;
        while (j < p->n && sorted[j].hi == sorted[i].hi && sorted[j].lo == sorted[i].lo)
            long_sets |= out[j++].npieces > 8;
        if (long_sets && j - i > 1)
            qsort(out + i, j - i, sizeof *out, cmp_picked);
        i = j;
    }
    vg_free(p->v);
    p->v = out;
    p->cap = p->n;
    vg_free(k);
    vg_free(tmp);
    return true;
}

static bool in_range(const struct head_series *s, int64_t mint, int64_t maxt)
{
    return s && (s->flags & HEAD_F_DURABLE) && s->min_t <= maxt && s->max_t >= mint;
}

/* Fills p with the matching series in id order, ready for tsdb_select (finish_picks). */
static int select_ids(struct tsdb *db, struct matcher *const *ms, size_t nms, int64_t mint,
                      int64_t maxt, struct vg_arena *ar, struct picks *p, struct vg_err *err)
{
    struct head *h = &db->head;
    struct index_ids ids = { 0 };
    int rc = 0;
    if (nms > SEL_MAX) { /* every matcher through the postings */
        rc = index_select(db->kv, ms, nms, &ids, err);
        pthread_mutex_lock(&db->mu);
        for (size_t i = 0; rc == 0 && i < ids.n; i++) {
            struct head_series *s = head_by_id(h, ids.v[i]);
            if (in_range(s, mint, maxt) && pick(p, ar, s) != 0)
                rc = tsdb_nomem(err, "selecting series");
        }
        if (rc == 0)
            rc = finish_picks(h, ar, p, err);
        pthread_mutex_unlock(&db->mu);
        index_ids_free(&ids);
        return rc;
    }
    struct sel q = { .ms = ms, .nms = nms };
    for (size_t i = 0; i < nms; i++) {
        q.all |= 1u << i;
        if (ms[i]->matches_empty)
            q.empty |= 1u << i;
    }
    if (q.empty == q.all)
        return vg_err_set(err, VG_EINVAL,
                          "at least one matcher must not match the empty string");
    size_t refs;
    pthread_mutex_lock(&db->mu);
    long drv = sel_driver(h, ms, nms, &refs);
    pthread_mutex_unlock(&db->mu);
    if (drv >= 0 && refs == 0)
        return 0; /* no series holds that pair */
    if (drv >= 0) {
        /* LevelDB is read without the lock; the head decides below as for a walk. */
        rc = index_select(db->kv, &ms[drv], 1, &ids, err);
        if (rc) {
            index_ids_free(&ids);
            return rc;
        }
    }
    pthread_mutex_lock(&db->mu);
    q.nsyms = h->nsyms;
    q.verdict = vg_calloc(q.nsyms ? q.nsyms : 1, sizeof *q.verdict);
    if (!q.verdict)
        rc = tsdb_nomem(err, "selecting series");
    size_t n = drv >= 0 ? ids.n : h->by_id_cap;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct head_series *s = drv >= 0 ? head_by_id(h, ids.v[i]) : h->by_id[i];
        if (in_range(s, mint, maxt) && sel_match(&q, h, s) && pick(p, ar, s) != 0)
            rc = tsdb_nomem(err, "selecting series");
    }
    if (rc == 0)
        rc = finish_picks(h, ar, p, err);
    pthread_mutex_unlock(&db->mu);
    vg_free(q.verdict);
    index_ids_free(&ids);
    return rc;
}

static int cmp_series(const void *a, const void *b)
{
    const struct tsdb_series *x = a, *y = b;
    return labels_cmp(x->labels, x->nlabels, y->labels, y->nlabels);
}

/* The labels of picked series x, in ar. */
static int picked_labels(const struct picks *p, const struct picked *x, struct vg_arena *ar,
                         struct tsdb_series *out, struct vg_err *err)
{
    size_t max = p->pairs ? x->npieces : x->nlabels;
    struct label *ls = vg_arena_alloc(ar, (max ? max : 1) * sizeof *ls);
    if (!ls)
        return tsdb_nomem(err, "selecting series");
    *out = (struct tsdb_series){ x->id, ls, max };
    if (p->pairs) {
        for (uint16_t k = 0; k < x->npieces; k++)
            ls[k] = p->pairs[x->sym[k] - 1];
        return 0;
    }
    int got = labels_decode(x->raw, x->len, ls, max, err);
    if (got < 0)
        return vg_err_prefix(err, "tsdb: stored labels of series %" PRIu64, x->id);
    out->nlabels = (size_t)got;
    return 0;
}

int tsdb_select(struct tsdb *db, struct matcher *const *ms, size_t nms, int64_t mint,
                int64_t maxt, struct tsdb_series_set **out, struct vg_err *err)
{
    *out = NULL;
    struct tsdb_series_set *set = vg_calloc(1, sizeof *set);
    struct vg_arena *ar = set ? vg_arena_new(QUERY_ARENA_BYTES) : NULL;
    if (!ar) {
        vg_free(set);
        return tsdb_nomem(err, "selecting series");
    }
    set->priv = ar;
    struct picks p = { 0 };
    int rc = select_ids(db, ms, nms, mint, maxt, ar, &p, err);
    if (rc == 0 && p.pairs && !sort_picked(&p, p.npairs))
        qsort(p.v, p.n, sizeof *p.v, cmp_picked);
    struct tsdb_series *v = NULL;
    if (rc == 0) {
        v = vg_arena_alloc(ar, (p.n ? p.n : 1) * sizeof *v);
        if (!v)
            rc = tsdb_nomem(err, "selecting series");
    }
    for (size_t i = 0; rc == 0 && i < p.n; i++)
        rc = picked_labels(&p, &p.v[i], ar, &v[i], err);
    if (rc) {
        vg_free(p.v);
        tsdb_series_set_free(set);
        return rc;
    }
    set->v = v;
    set->n = p.n;
    if (!p.pairs)
        qsort(v, p.n, sizeof *v, cmp_series);
    vg_free(p.v);
    *out = set;
    return 0;
}

void tsdb_series_set_free(struct tsdb_series_set *s)
{
    if (!s)
        return;
    vg_arena_free(s->priv);
    vg_free(s);
}

/* ---- label names and values ---- */

struct strlist {
    struct tsdb_strings *out;
    size_t cap;
};

static int strlist_add(void *ctx, const char *s, size_t len)
{
    struct strlist *l = ctx;
    if (l->out->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 64;
        char **nv = vg_realloc(l->out->v, ncap * sizeof *nv);
        if (!nv)
            return VG_ENOMEM;
        l->out->v = nv;
        l->cap = ncap;
    }
    char *d = vg_strndup(s, len);
    if (!d)
        return VG_ENOMEM;
    l->out->v[l->out->n++] = d;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void strings_sort_unique(struct tsdb_strings *s)
{
    if (s->n > 1)
        qsort(s->v, s->n, sizeof *s->v, cmp_str);
    size_t w = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (w && strcmp(s->v[w - 1], s->v[i]) == 0)
            vg_free(s->v[i]);
        else
            s->v[w++] = s->v[i];
    }
    s->n = w;
}

void tsdb_strings_free(struct tsdb_strings *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        vg_free(s->v[i]);
    vg_free(s->v);
    s->v = NULL;
    s->n = 0;
}

static int label_strings(struct tsdb *db, const char *name, struct matcher *const *ms,
                         size_t nms, int64_t mint, int64_t maxt, struct tsdb_strings *out,
                         struct vg_err *err)
{
    memset(out, 0, sizeof *out);
    struct strlist l = { out, 0 };
    int rc;
    if (nms == 0) {
        rc = name ? index_label_values(db->kv, vg_str_c(name), strlist_add, &l, err)
                  : index_label_names(db->kv, strlist_add, &l, err);
        if (rc == VG_ENOMEM)
            tsdb_nomem(err, "listing labels");
    } else {
        struct tsdb_series_set *set = NULL;
        rc = tsdb_select(db, ms, nms, mint, maxt, &set, err);
        for (size_t i = 0; rc == 0 && i < set->n; i++) {
            const struct tsdb_series *s = &set->v[i];
            for (size_t j = 0; rc == 0 && j < s->nlabels; j++) {
                const struct label *lb = &s->labels[j];
                if (!name)
                    rc = strlist_add(&l, lb->name.p, lb->name.len);
                else if (vg_str_eq_c(lb->name, name) && lb->value.len)
                    rc = strlist_add(&l, lb->value.p, lb->value.len);
            }
            if (rc)
                tsdb_nomem(err, "listing labels");
        }
        tsdb_series_set_free(set);
        strings_sort_unique(out);
    }
    if (rc)
        tsdb_strings_free(out);
    return rc;
}

int tsdb_label_names(struct tsdb *db, struct matcher *const *ms, size_t nms, int64_t mint,
                     int64_t maxt, struct tsdb_strings *out, struct vg_err *err)
{
    return label_strings(db, NULL, ms, nms, mint, maxt, out, err);
}

int tsdb_label_values(struct tsdb *db, const char *name, struct matcher *const *ms,
                      size_t nms, int64_t mint, int64_t maxt, struct tsdb_strings *out,
                      struct vg_err *err)
{
    return label_strings(db, name, ms, nms, mint, maxt, out, err);
}

/* ---- metadata and exemplars ---- */

static bool get_uvarint(const unsigned char **p, const unsigned char *end, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
        unsigned char c = *(*p)++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

static void copy_str(char *dst, size_t cap, const unsigned char *src, size_t len)
{
    if (!cap)
        return;
    if (len >= cap)
        len = cap - 1;
    memcpy(dst, src, len);
    dst[len] = 0;
}

bool tsdb_metadata_get(struct tsdb *db, const char *metric, enum tsdb_metric_type *type,
                       char *help, size_t help_cap, char *unit, size_t unit_cap)
{
    struct vg_buf key, val;
    vg_buf_init(&key);
    vg_buf_init(&val);
    vg_buf_putc(&key, 'M');
    vg_buf_puts(&key, metric);
    bool ok = !vg_buf_failed(&key) && kv_get(db->kv, NULL, key.p, key.len, &val, NULL) == 0;
    const unsigned char *p = (const unsigned char *)val.p, *end = p + val.len;
    uint64_t hl, ul;
    ok = ok && val.len >= 1;
    if (ok) {
        *type = *p <= TSDB_TYPE_STATESET ? (enum tsdb_metric_type)*p : TSDB_TYPE_UNKNOWN;
        p++;
        ok = get_uvarint(&p, end, &hl) && hl <= (uint64_t)(end - p);
    }
    if (ok) {
        copy_str(help, help_cap, p, hl);
        p += hl;
        ok = get_uvarint(&p, end, &ul) && ul <= (uint64_t)(end - p);
    }
    if (ok)
        copy_str(unit, unit_cap, p, ul);
    vg_buf_free(&key);
    vg_buf_free(&val);
    return ok;
}

int tsdb_metadata_names(struct tsdb *db, struct tsdb_strings *out, struct vg_err *err)
{
    out->v = NULL;
    out->n = 0;
    struct strlist l = { .out = out };
    struct kv_iter *it = kv_iter_new(db->kv, NULL, false);
    if (!it)
        return tsdb_nomem(err, "listing metadata");
    int rc = 0;
    for (kv_iter_seek(it, "M", 1); rc == 0 && kv_iter_has_prefix(it, "M", 1); kv_iter_next(it)) {
        size_t klen;
        const char *k = kv_iter_key(it, &klen);
        rc = strlist_add(&l, k + 1, klen - 1);
        if (rc < 0)
            vg_err_set(err, rc, "out of memory listing metadata");
    }
    if (rc == 0)
        rc = kv_iter_error(it, err);
    kv_iter_free(it);
    if (rc < 0)
        tsdb_strings_free(out);
    return rc;
}

int tsdb_exemplars(struct tsdb *db, struct matcher *const *ms, size_t nms, int64_t mint,
                   int64_t maxt, struct tsdb_exemplar_set **out, struct vg_err *err)
{
    *out = NULL;
    struct tsdb_series_set *ss;
    int rc = tsdb_select(db, ms, nms, INT64_MIN, INT64_MAX, &ss, err);
    if (rc)
        return rc;
    struct tsdb_exemplar_set *set = vg_calloc(1, sizeof *set);
    struct vg_arena *ar = vg_arena_new(QUERY_ARENA_BYTES);
    struct kv_iter *it = kv_iter_new(db->kv, NULL, true);
    size_t cap = 0;
    if (!set || !ar || !it) {
        rc = tsdb_nomem(err, "reading exemplars");
        goto done;
    }
    set->priv = ar;
    for (size_t i = 0; i < ss->n && rc == 0; i++) {
        unsigned char k0[17];
        tsdb_id_key(k0, 'E', ss->v[i].id);
        tsdb_put_u64be(k0 + 9, tsdb_tk(mint));
        for (kv_iter_seek(it, k0, sizeof k0); rc == 0 && kv_iter_has_prefix(it, k0, 9);
             kv_iter_next(it)) {
            size_t kl, vl;
            const char *k = kv_iter_key(it, &kl);
            const char *v = kv_iter_value(it, &vl);
            if (kl != 17 || vl < 8)
                continue;
            int64_t t = tsdb_tk_inv(tsdb_get_u64be(k + 9));
            if (t > maxt)
                break;
            if (set->n == cap) {
                size_t ncap = cap ? cap * 2 : 16;
                struct tsdb_exemplar_out *nv = vg_realloc(set->v, ncap * sizeof *nv);
                if (!nv) {
                    rc = tsdb_nomem(err, "reading exemplars");
                    break;
                }
                set->v = nv;
                cap = ncap;
            }
            size_t llen = vl - 8, maxl = llen / 2 + 1;
            char *copy = vg_arena_alloc(ar, llen + 1);
            struct label *ls = vg_arena_alloc(ar, maxl * sizeof *ls);
            if (!copy || !ls) {
                rc = tsdb_nomem(err, "reading exemplars");
                break;
            }
            memcpy(copy, v + 8, llen);
            int nl = labels_decode(copy, llen, ls, maxl, NULL);
            uint64_t bits = 0;
            for (int q = 0; q < 8; q++)
                bits |= (uint64_t)(unsigned char)v[q] << (8 * q);
            struct tsdb_exemplar_out *e = &set->v[set->n++];
            e->series_id = ss->v[i].id;
            e->labels = ls;
            e->nlabels = nl > 0 ? (size_t)nl : 0;
            e->t = t;
            memcpy(&e->v, &bits, 8);
        }
    }
    if (rc == 0)
        rc = kv_iter_error(it, err);
done:
    kv_iter_free(it);
    tsdb_series_set_free(ss);
    if (rc) {
        if (set)
            set->priv = ar;
        tsdb_exemplar_set_free(set);
        if (!set)
            vg_arena_free(ar);
        return rc;
    }
    *out = set;
    return 0;
}

void tsdb_exemplar_set_free(struct tsdb_exemplar_set *s)
{
    if (!s)
        return;
    vg_free(s->v);
    vg_arena_free(s->priv);
    vg_free(s);
}

/* ---- stats ---- */

void tsdb_stats(struct tsdb *db, struct tsdb_stats *st)
{
    memset(st, 0, sizeof *st);
    st->min_time = INT64_MAX;
    st->max_time = INT64_MIN;
    pthread_mutex_lock(&db->mu);
    struct head *h = &db->head;
    for (size_t i = 0; i < h->by_id_cap; i++) {
        struct head_series *s = h->by_id[i];
        if (!s || !(s->flags & HEAD_F_DURABLE))
            continue;
        st->series++;
        size_t mem = head_mem_samples(s);
        st->head_series += mem > 0;
        st->head_samples += mem;
        if (s->min_t < st->min_time)
            st->min_time = s->min_t;
        if (s->max_t > st->max_time)
            st->max_time = s->max_t;
    }
    st->chunks_persisted = db->chunks_persisted;
    st->samples_appended = db->samples_appended;
    st->ooo_samples = db->ooo_samples;
    pthread_mutex_unlock(&db->mu);
    dir_usage(db->dir, &st->bytes_on_disk);
}

