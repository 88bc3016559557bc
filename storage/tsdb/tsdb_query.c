/* tsdb_query: the TSDB's read paths (samples, series selection, label names and
 * values, metadata, exemplars, figures). Key layout at the top of tsdb.c.
 *
 * Readers copy what they need from the head under mu, then read LevelDB without it.
 * Reading memory first matters: a chunk written meanwhile is then either in the copy
 * or already on disk when we look (the merge removes the duplicate). */
#include "tsdb_int.h"

#include "../base/vg_alloc.h"
#include "../base/vg_arena.h"
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
    struct tsdb *db = r->db;
    *out = NULL;
    *n = 0;
    if (mint > maxt)
        return 0;
    struct head_samples a = { 0 };
    pthread_mutex_lock(&db->mu);
    struct head_series *s = head_by_id(&db->head, id);
    int rc = s ? head_collect(s, mint, maxt, &a) : 0;
    uint64_t persisted = db->chunks_persisted;
    pthread_mutex_unlock(&db->mu);
    if (!s)
        return 0;
    if (rc) {
        vg_free(a.v);
        return tsdb_nomem(err, "reading samples");
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
        vg_free(a.v);
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
    if (rc == 0)
        rc = kv_iter_error(it, err);
    r->placed = rc == 0;
    if (rc) {
        kv_iter_free(r->it); /* the next read starts from a fresh iterator */
        r->it = NULL;
        vg_free(a.v);
        return rc;
    }
    head_samples_sort_unique(&a);
    *out = a.v;
    *n = a.n;
    return 0;
}

struct set_priv {
    struct vg_arena *arena;
};

static int cmp_series(const void *a, const void *b)
{
    const struct tsdb_series *x = a, *y = b;
    return labels_cmp(x->labels, x->nlabels, y->labels, y->nlabels);
}

int tsdb_select(struct tsdb *db, struct matcher *const *ms, size_t nms, int64_t mint,
                int64_t maxt, struct tsdb_series_set **out, struct vg_err *err)
{
    *out = NULL;
    struct index_ids ids = { 0 };
    int rc = index_select(db->kv, ms, nms, &ids, err);
    if (rc) {
        index_ids_free(&ids);
        return rc;
    }
    struct tsdb_series_set *set = vg_calloc(1, sizeof *set);
    struct vg_arena *ar = set ? vg_arena_new(QUERY_ARENA_BYTES) : NULL;
    size_t cnt = ids.n ? ids.n : 1;
    struct tsdb_series *v = ar ? vg_arena_alloc(ar, cnt * sizeof *v) : NULL;
    /* Label bytes are copied under the lock and decoded outside it. */
    char **raw = v ? vg_arena_alloc(ar, cnt * sizeof *raw) : NULL;
    uint32_t *rawlen = raw ? vg_arena_alloc(ar, cnt * sizeof *rawlen) : NULL;
    if (!rawlen) {
        vg_free(set);
        vg_arena_free(ar);
        index_ids_free(&ids);
        return tsdb_nomem(err, "selecting series");
    }
    set->priv = ar;
    set->v = v;
    size_t n = 0;
    pthread_mutex_lock(&db->mu);
    for (size_t i = 0; i < ids.n; i++) {
        struct head_series *s = head_by_id(&db->head, ids.v[i]);
        if (!s || !(s->flags & HEAD_F_DURABLE) || s->min_t > maxt || s->max_t < mint)
            continue;
        char *copy = vg_arena_alloc(ar, s->lbl_len ? s->lbl_len : 1);
        struct label *ls = vg_arena_alloc(ar, (s->nlabels ? s->nlabels : 1) * sizeof *ls);
        if (!copy || !ls) {
            rc = tsdb_nomem(err, "selecting series");
            break;
        }
        head_labels_copy(&db->head, s, copy);
        raw[n] = copy;
        rawlen[n] = s->lbl_len;
        v[n].id = s->id;
        v[n].labels = ls;
        v[n].nlabels = s->nlabels;
        n++;
    }
    pthread_mutex_unlock(&db->mu);
    index_ids_free(&ids);
    for (size_t i = 0; i < n && rc == 0; i++) {
        int got = labels_decode(raw[i], rawlen[i], v[i].labels, v[i].nlabels, err);
        if (got < 0)
            rc = vg_err_prefix(err, "tsdb: stored labels of series %" PRIu64, v[i].id);
        else
            v[i].nlabels = (size_t)got;
    }
    if (rc) {
        tsdb_series_set_free(set);
        return rc;
    }
    set->n = n;
    qsort(v, n, sizeof *v, cmp_series);
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

