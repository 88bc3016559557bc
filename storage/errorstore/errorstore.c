/* errorstore: see errorstore.h for the key layout and the record format.
 *
 * Recording sorts the occurrences by (fingerprint, hour), so each group record and each
 * hour count is read once, merged in memory and written once, all in one batch.
 *
 * Expiry walks the groups in fingerprint order in rounds: each round takes the mutex,
 * handles whole groups (a group's record and its hour keys are deleted in one write, so
 * recording never meets half a group) until about EXPIRE_BATCH deletes are batched,
 * writes them and lets go of the mutex, so recording waits for one round at most. A group
 * with more old hours than that is written in several batches within its round. */
#include "errorstore.h"

#include "../base/vg_alloc.h"
#include "../base/vg_buf.h"
#include "../kv.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECORD_VERSION 1
#define GKEY_LEN 9
#define HKEY_LEN 17
#define EXPIRE_BATCH ((size_t)1024) /* deletes per LevelDB write during expiry */

struct errorstore {
    struct kv *kv;
    size_t max_groups;
    bool sync;
    pthread_mutex_t mu; /* serialises errorstore_record; guards ngroups */
    size_t ngroups;
};

/* ---- keys and varints ---- */

static void put_u64be(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_u64be(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void gkey(uint8_t *k, uint64_t fp)
{
    k[0] = 'G';
    put_u64be(k + 1, fp);
}

static void hkey(uint8_t *k, uint64_t fp, uint64_t hour)
{
    k[0] = 'H';
    put_u64be(k + 1, fp);
    put_u64be(k + 9, hour);
}

static uint64_t hour_of(int64_t t_ms)
{
    return t_ms <= 0 ? 0 : (uint64_t)(t_ms / ERRORSTORE_HOUR_MS);
}

static void put_svarint(struct vg_buf *b, int64_t v)
{
    vg_buf_put_uvarint(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static void put_str(struct vg_buf *b, struct vg_str s)
{
    if (s.len > ERRORSTORE_MAX_TEXT)
        s.len = ERRORSTORE_MAX_TEXT;
    vg_buf_put_uvarint(b, s.len);
    vg_buf_append(b, s.p, s.len);
}

struct rd {
    const uint8_t *p, *end;
    bool ok;
};

static uint64_t rd_uvarint(struct rd *r)
{
    uint64_t v = 0;
    for (int shift = 0; r->ok && shift < 64; shift += 7) {
        if (r->p >= r->end)
            break;
        uint8_t c = *r->p++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            return v;
    }
    r->ok = false;
    return 0;
}

static int64_t rd_svarint(struct rd *r)
{
    uint64_t u = rd_uvarint(r);
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

static struct vg_str rd_str(struct rd *r)
{
    uint64_t n = rd_uvarint(r);
    if (!r->ok || n > (uint64_t)(r->end - r->p)) {
        r->ok = false;
        return (struct vg_str){ "", 0 };
    }
    struct vg_str s = { (const char *)r->p, (size_t)n };
    r->p += n;
    return s;
}

/* ---- the group record ---- */

struct rec {
    uint64_t count;
    int64_t first_ms, last_ms;
    struct vg_str type, message, frames;
    struct vg_str services[ERRORSTORE_MAX_SERVICES];
    size_t nservices;
    struct vg_str sample_tid[ERRORSTORE_MAX_SAMPLES];
    int64_t sample_t[ERRORSTORE_MAX_SAMPLES];
    size_t nsamples;
};

static bool rec_decode(const void *buf, size_t len, struct rec *r)
{
    struct rd d = { buf, (const uint8_t *)buf + len, len > 0 };
    if (!d.ok || *d.p++ != RECORD_VERSION)
        return false;
    memset(r, 0, sizeof *r);
    r->count = rd_uvarint(&d);
    r->first_ms = rd_svarint(&d);
    r->last_ms = rd_svarint(&d);
    r->type = rd_str(&d);
    r->message = rd_str(&d);
    r->frames = rd_str(&d);
    uint64_t n = rd_uvarint(&d);
    if (n > ERRORSTORE_MAX_SERVICES)
        return false;
    for (r->nservices = 0; r->nservices < n; r->nservices++)
        r->services[r->nservices] = rd_str(&d);
    n = rd_uvarint(&d);
    if (n > ERRORSTORE_MAX_SAMPLES)
        return false;
    for (r->nsamples = 0; r->nsamples < n; r->nsamples++) {
        r->sample_tid[r->nsamples] = rd_str(&d);
        r->sample_t[r->nsamples] = rd_svarint(&d);
    }
    return d.ok && d.p == d.end;
}

static void rec_encode(const struct rec *r, struct vg_buf *b)
{
    vg_buf_putc(b, RECORD_VERSION);
    vg_buf_put_uvarint(b, r->count);
    put_svarint(b, r->first_ms);
    put_svarint(b, r->last_ms);
    put_str(b, r->type);
    put_str(b, r->message);
    put_str(b, r->frames);
    vg_buf_put_uvarint(b, r->nservices);
    for (size_t i = 0; i < r->nservices; i++)
        put_str(b, r->services[i]);
    vg_buf_put_uvarint(b, r->nsamples);
    for (size_t i = 0; i < r->nsamples; i++) {
        put_str(b, r->sample_tid[i]);
        put_svarint(b, r->sample_t[i]);
    }
}

/* Folds one occurrence into r (strings borrowed from o). */
static void rec_merge(struct rec *r, const struct errorstore_occurrence *o)
{
    if (r->count == 0) {
        r->type = o->type;
        r->message = o->message;
        r->frames = o->frames;
        r->first_ms = r->last_ms = o->t_ms;
    }
    r->count += o->count;
    if (o->t_ms < r->first_ms)
        r->first_ms = o->t_ms;
    if (o->t_ms > r->last_ms)
        r->last_ms = o->t_ms;
    if (o->service.len && r->nservices < ERRORSTORE_MAX_SERVICES) {
        size_t i = 0;
        while (i < r->nservices && !vg_str_eq(r->services[i], o->service))
            i++;
        if (i == r->nservices)
            r->services[r->nservices++] = o->service;
    }
    if (o->trace_id.len) {
        size_t i = 0;
        while (i < r->nsamples && !vg_str_eq(r->sample_tid[i], o->trace_id))
            i++;
        if (i < r->nsamples)
            return; /* known */
        size_t at = 0; /* newest first */
        while (at < r->nsamples && r->sample_t[at] >= o->t_ms)
            at++;
        if (at >= ERRORSTORE_MAX_SAMPLES)
            return; /* older than every kept sample */
        size_t n = r->nsamples < ERRORSTORE_MAX_SAMPLES ? r->nsamples : r->nsamples - 1;
        memmove(&r->sample_tid[at + 1], &r->sample_tid[at], (n - at) * sizeof *r->sample_tid);
        memmove(&r->sample_t[at + 1], &r->sample_t[at], (n - at) * sizeof *r->sample_t);
        r->sample_tid[at] = o->trace_id;
        r->sample_t[at] = o->t_ms;
        r->nsamples = n + 1;
    }
}

/* ---- open and close ---- */

struct errorstore *errorstore_open(const struct errorstore_opts *o, struct vg_err *err)
{
    if (!o->dir || o->max_groups < 1) {
        vg_err_set(err, VG_EINVAL, "errorstore: a directory and max_groups >= 1 are needed");
        return NULL;
    }
    struct errorstore *es = vg_calloc(1, sizeof *es);
    if (!es) {
        vg_err_set(err, VG_ENOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&es->mu, NULL);
    es->max_groups = o->max_groups;
    es->sync = !o->no_sync;
    struct kv_opts ko = { .cache_bytes = 4 << 20, .write_buffer_bytes = 1 << 20,
                          .sync_interval_ms = o->sync_interval_ms };
    if (!(es->kv = kv_open(o->dir, &ko, err))) {
        errorstore_close(es);
        return NULL;
    }
    struct kv_iter *it = kv_iter_new(es->kv, NULL, false);
    if (!it) {
        vg_err_set(err, VG_ENOMEM, "out of memory");
        errorstore_close(es);
        return NULL;
    }
    for (kv_iter_seek(it, "G", 1); kv_iter_has_prefix(it, "G", 1); kv_iter_next(it))
        es->ngroups++;
    int rc = kv_iter_error(it, err);
    kv_iter_free(it);
    if (rc < 0) {
        errorstore_close(es);
        return NULL;
    }
    return es;
}

void errorstore_close(struct errorstore *es)
{
    if (!es)
        return;
    kv_close(es->kv);
    pthread_mutex_destroy(&es->mu);
    vg_free(es);
}

size_t errorstore_ngroups(struct errorstore *es)
{
    pthread_mutex_lock(&es->mu);
    size_t n = es->ngroups;
    pthread_mutex_unlock(&es->mu);
    return n;
}

/* ---- recording ---- */

static int cmp_occ(const void *a, const void *b)
{
    const struct errorstore_occurrence *x = *(const struct errorstore_occurrence *const *)a;
    const struct errorstore_occurrence *y = *(const struct errorstore_occurrence *const *)b;
    if (x->fingerprint != y->fingerprint)
        return x->fingerprint < y->fingerprint ? -1 : 1;
    uint64_t hx = hour_of(x->t_ms), hy = hour_of(y->t_ms);
    return hx < hy ? -1 : hx > hy;
}

/* Adds count to the hour counter at key, read from the store. */
static int add_hour(struct errorstore *es, struct kv_batch *b, uint64_t fp, uint64_t hour,
                    uint64_t count, struct vg_buf *val, struct vg_err *err)
{
    uint8_t k[HKEY_LEN];
    hkey(k, fp, hour);
    int rc = kv_get(es->kv, NULL, k, sizeof k, val, err);
    if (rc == 0) {
        struct rd d = { (const uint8_t *)val->p, (const uint8_t *)val->p + val->len, true };
        uint64_t old = rd_uvarint(&d);
        if (d.ok)
            count += old;
    } else if (rc != VG_ENOTFOUND) {
        return rc;
    }
    uint8_t enc[10];
    size_t n = 0;
    for (uint64_t v = count; ; v >>= 7) {
        enc[n++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
        if (v < 0x80)
            break;
    }
    kv_batch_put(b, k, sizeof k, enc, n);
    return 0;
}

/* Merges the run occ[0..n) (one fingerprint, sorted by hour) into its group. */
static int record_run(struct errorstore *es, struct kv_batch *b,
                      const struct errorstore_occurrence *const *occ, size_t n,
                      struct errorstore_record_result *res, struct vg_buf *old,
                      struct vg_buf *enc, size_t *ngroups, struct vg_err *err)
{
    uint64_t fp = occ[0]->fingerprint;
    uint8_t k[GKEY_LEN];
    gkey(k, fp);
    struct rec r;
    memset(&r, 0, sizeof r);
    int rc = kv_get(es->kv, NULL, k, sizeof k, old, err);
    if (rc == 0 && !rec_decode(old->p, old->len, &r))
        return vg_err_set(err, VG_EIO, "errorstore %s: group %016llx does not decode",
                          kv_path(es->kv), (unsigned long long)fp);
    if (rc == VG_ENOTFOUND) {
        if (*ngroups >= es->max_groups) {
            for (size_t i = 0; i < n; i++)
                res->dropped_full += occ[i]->count;
            return 0;
        }
        (*ngroups)++;
        res->groups_created++;
    } else if (rc < 0) {
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        rec_merge(&r, occ[i]);
        res->recorded += occ[i]->count;
    }
    vg_buf_reset(enc);
    rec_encode(&r, enc);
    if (vg_buf_failed(enc))
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    kv_batch_put(b, k, sizeof k, enc->p, enc->len);
    for (size_t i = 0; i < n;) {
        uint64_t hour = hour_of(occ[i]->t_ms), count = 0;
        for (; i < n && hour_of(occ[i]->t_ms) == hour; i++)
            count += occ[i]->count;
        if ((rc = add_hour(es, b, fp, hour, count, old, err)) < 0)
            return rc;
    }
    return 0;
}

int errorstore_record(struct errorstore *es, const struct errorstore_occurrence *occ,
                      size_t n, struct errorstore_record_result *res, struct vg_err *err)
{
    memset(res, 0, sizeof *res);
    if (n == 0)
        return 0;
    const struct errorstore_occurrence **v = vg_malloc(n * sizeof *v);
    struct kv_batch *b = kv_batch_new();
    struct vg_buf old, enc;
    vg_buf_init(&old);
    vg_buf_init(&enc);
    int rc = 0;
    if (!v || !b) {
        rc = vg_err_set(err, VG_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        v[i] = &occ[i];
    qsort(v, n, sizeof *v, cmp_occ);
    pthread_mutex_lock(&es->mu);
    size_t ngroups = es->ngroups;
    for (size_t i = 0, j; rc == 0 && i < n; i = j) {
        for (j = i + 1; j < n && v[j]->fingerprint == v[i]->fingerprint; j++)
            ;
        rc = record_run(es, b, v + i, j - i, res, &old, &enc, &ngroups, err);
    }
    if (rc == 0 && kv_batch_count(b) > 0)
        rc = kv_write(es->kv, b, es->sync, err);
    if (rc == 0)
        es->ngroups = ngroups;
    pthread_mutex_unlock(&es->mu);
    if (rc < 0)
        memset(res, 0, sizeof *res);
out:
    vg_buf_free(&old);
    vg_buf_free(&enc);
    kv_batch_free(b);
    vg_free(v);
    return rc;
}

/* ---- reading ---- */

static char *arena_str(struct vg_arena *a, struct vg_str s, bool *ok)
{
    char *p = vg_arena_strndup(a, s.p, s.len);
    if (!p)
        *ok = false;
    return p ? p : "";
}

/* Decodes one stored record into g (strings copied into a). */
static int group_from(struct vg_arena *a, uint64_t fp, const char *val, size_t len,
                      struct errorstore_group *g, const char *path, struct vg_err *err)
{
    struct rec r;
    if (!rec_decode(val, len, &r))
        return vg_err_set(err, VG_EIO, "errorstore %s: group %016llx does not decode", path,
                          (unsigned long long)fp);
    bool ok = true;
    memset(g, 0, sizeof *g);
    g->fingerprint = fp;
    g->type = arena_str(a, r.type, &ok);
    g->message = arena_str(a, r.message, &ok);
    g->frames = arena_str(a, r.frames, &ok);
    g->count = r.count;
    g->first_seen_ms = r.first_ms;
    g->last_seen_ms = r.last_ms;
    g->services = vg_arena_alloc(a, (r.nservices + 1) * sizeof *g->services);
    g->samples = vg_arena_alloc(a, (r.nsamples + 1) * sizeof *g->samples);
    if (!g->services || !g->samples)
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    for (size_t i = 0; i < r.nservices; i++)
        g->services[i] = arena_str(a, r.services[i], &ok);
    g->nservices = r.nservices;
    for (size_t i = 0; i < r.nsamples; i++) {
        g->samples[i].trace_id = arena_str(a, r.sample_tid[i], &ok);
        g->samples[i].t_ms = r.sample_t[i];
    }
    g->nsamples = r.nsamples;
    return ok ? 0 : vg_err_set(err, VG_ENOMEM, "out of memory");
}

/* The group record under the iterator and its fingerprint; NULL for a stray key. */
static const char *group_at(const struct kv_iter *it, uint64_t *fp, size_t *vlen)
{
    size_t klen;
    const char *k = kv_iter_key(it, &klen);
    if (klen != GKEY_LEN)
        return NULL;
    *fp = get_u64be((const uint8_t *)k + 1);
    return kv_iter_value(it, vlen);
}

static int groups_init(struct errorstore_groups *out, size_t cap, struct vg_err *err)
{
    memset(out, 0, sizeof *out);
    out->arena = vg_arena_new((size_t)16 * 1024);
    if (out->arena)
        out->v = vg_arena_alloc(out->arena, (cap ? cap : 1) * sizeof *out->v);
    return out->v ? 0 : vg_err_set(err, VG_ENOMEM, "out of memory");
}

int errorstore_list(struct errorstore *es, struct errorstore_groups *out, struct vg_err *err)
{
    memset(out, 0, sizeof *out);
    /* Every write that adds or deletes groups holds the mutex, so the snapshot and the
     * count taken together under it agree. */
    pthread_mutex_lock(&es->mu);
    struct kv_snapshot *snap = kv_snapshot_new(es->kv);
    size_t cap = es->ngroups;
    pthread_mutex_unlock(&es->mu);
    int rc = snap ? groups_init(out, cap, err) : vg_err_set(err, VG_ENOMEM, "out of memory");
    struct kv_iter *it = rc == 0 ? kv_iter_new(es->kv, snap, false) : NULL;
    if (rc == 0 && !it)
        rc = vg_err_set(err, VG_ENOMEM, "out of memory");
    if (it)
        kv_iter_seek(it, "G", 1);
    for (; rc == 0 && kv_iter_has_prefix(it, "G", 1) && out->n < cap; kv_iter_next(it)) {
        uint64_t fp;
        size_t vlen;
        const char *val = group_at(it, &fp, &vlen);
        if (!val)
            continue;
        rc = group_from(out->arena, fp, val, vlen, &out->v[out->n], kv_path(es->kv), err);
        if (rc == 0)
            out->n++;
    }
    if (rc == 0 && it)
        rc = kv_iter_error(it, err);
    kv_iter_free(it);
    kv_snapshot_free(es->kv, snap);
    return rc;
}

int errorstore_get(struct errorstore *es, uint64_t fingerprint, struct errorstore_groups *out,
                   struct vg_err *err)
{
    int rc = groups_init(out, 1, err);
    if (rc < 0)
        return rc;
    uint8_t k[GKEY_LEN];
    gkey(k, fingerprint);
    struct vg_buf val;
    vg_buf_init(&val);
    rc = kv_get(es->kv, NULL, k, sizeof k, &val, err);
    if (rc == VG_ENOTFOUND)
        vg_err_set(err, VG_ENOTFOUND, "error group %016llx not found",
                   (unsigned long long)fingerprint);
    if (rc == 0)
        rc = group_from(out->arena, fingerprint, val.p, val.len, &out->v[0], kv_path(es->kv),
                        err);
    if (rc == 0)
        out->n = 1;
    vg_buf_free(&val);
    return rc;
}

void errorstore_groups_free(struct errorstore_groups *g)
{
    vg_arena_free(g->arena);
    memset(g, 0, sizeof *g);
}

int errorstore_hours(struct errorstore *es, uint64_t fingerprint, int64_t start_ms,
                     int64_t end_ms, struct errorstore_hour **out, size_t *n,
                     struct vg_err *err)
{
    *out = NULL;
    *n = 0;
    if (end_ms < start_ms)
        return 0;
    uint8_t from[HKEY_LEN], prefix[GKEY_LEN];
    hkey(from, fingerprint, hour_of(start_ms));
    memcpy(prefix, from, GKEY_LEN);
    uint64_t last = hour_of(end_ms);
    struct kv_iter *it = kv_iter_new(es->kv, NULL, true);
    if (!it)
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    size_t cap = 0;
    int rc = 0;
    for (kv_iter_seek(it, from, sizeof from); kv_iter_has_prefix(it, prefix, sizeof prefix);
         kv_iter_next(it)) {
        size_t klen, vlen;
        const uint8_t *k = (const uint8_t *)kv_iter_key(it, &klen);
        const uint8_t *val = (const uint8_t *)kv_iter_value(it, &vlen);
        if (klen != HKEY_LEN)
            continue;
        uint64_t hour = get_u64be(k + 9);
        if (hour > last)
            break;
        struct rd d = { val, val + vlen, true };
        uint64_t count = rd_uvarint(&d);
        if (!d.ok || !count)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            struct errorstore_hour *nv = vg_realloc(*out, cap * sizeof *nv);
            if (!nv) {
                rc = vg_err_set(err, VG_ENOMEM, "out of memory");
                break;
            }
            *out = nv;
        }
        (*out)[(*n)++] = (struct errorstore_hour){ (int64_t)hour * ERRORSTORE_HOUR_MS, count };
    }
    if (rc == 0)
        rc = kv_iter_error(it, err);
    kv_iter_free(it);
    if (rc < 0) {
        vg_free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

/* ---- expiry ---- */

struct expiry {
    struct kv_batch *b;
    size_t gone;     /* groups deleted in the batch, not yet written */
    size_t *deleted; /* groups deleted and written */
};

/* Writes the batch; the group count follows only what was written. Mutex held. */
static int expire_write(struct errorstore *es, struct expiry *x, struct vg_err *err)
{
    int rc = kv_batch_count(x->b) > 0 ? kv_write(es->kv, x->b, es->sync, err) : 0;
    kv_batch_clear(x->b);
    if (rc == 0) {
        es->ngroups = es->ngroups > x->gone ? es->ngroups - x->gone : 0;
        *x->deleted += x->gone;
    }
    x->gone = 0;
    return rc;
}

/* Batches the deletion of fp's hour keys before hour limit (all of them when limit is
 * UINT64_MAX); writes full batches at once (the caller holds the mutex). */
static int expire_hours(struct errorstore *es, struct expiry *x, uint64_t fp,
                        uint64_t limit, struct vg_err *err)
{
    uint8_t from[HKEY_LEN];
    hkey(from, fp, 0);
    struct kv_iter *it = kv_iter_new(es->kv, NULL, false);
    if (!it)
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    int rc = 0;
    for (kv_iter_seek(it, from, sizeof from); kv_iter_has_prefix(it, from, GKEY_LEN);
         kv_iter_next(it)) {
        size_t klen;
        const uint8_t *k = (const uint8_t *)kv_iter_key(it, &klen);
        if (klen == HKEY_LEN && get_u64be(k + 9) >= limit)
            break;
        kv_batch_delete(x->b, k, klen);
        if (kv_batch_count(x->b) >= 4 * EXPIRE_BATCH && (rc = expire_write(es, x, err)) < 0)
            break;
    }
    if (rc == 0)
        rc = kv_iter_error(it, err);
    kv_iter_free(it);
    return rc;
}

/* One round from group key at (updated to resume after the last group handled); sets
 * *done when no group is left. Called with the mutex held. */
static int expire_round(struct errorstore *es, struct expiry *x, uint8_t *at,
                        int64_t cutoff_ms, bool *done, struct vg_err *err)
{
    struct kv_iter *it = kv_iter_new(es->kv, NULL, false);
    if (!it)
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    uint64_t cut_hour = hour_of(cutoff_ms);
    int rc = 0;
    *done = true;
    for (kv_iter_seek(it, at, GKEY_LEN); kv_iter_has_prefix(it, "G", 1); kv_iter_next(it)) {
        if (kv_batch_count(x->b) >= EXPIRE_BATCH) {
            *done = false;
            break;
        }
        uint64_t fp;
        size_t vlen;
        const char *val = group_at(it, &fp, &vlen);
        if (!val)
            continue;
        struct rec r;
        if (!rec_decode(val, vlen, &r)) {
            rc = vg_err_set(err, VG_EIO, "errorstore %s: group %016llx does not decode",
                            kv_path(es->kv), (unsigned long long)fp);
            break;
        }
        bool dead = r.last_ms < cutoff_ms;
        if (dead) {
            uint8_t gk[GKEY_LEN];
            gkey(gk, fp);
            kv_batch_delete(x->b, gk, sizeof gk);
            x->gone++;
        }
        if ((rc = expire_hours(es, x, fp, dead ? UINT64_MAX : cut_hour, err)) < 0)
            break;
        gkey(at, fp + 1);
        if (fp == UINT64_MAX)
            break; /* the last possible group */
    }
    if (rc == 0)
        rc = kv_iter_error(it, err);
    kv_iter_free(it);
    if (rc == 0)
        return expire_write(es, x, err);
    kv_batch_clear(x->b);
    x->gone = 0;
    return rc;
}

int errorstore_expire(struct errorstore *es, int64_t cutoff_ms, size_t *groups_deleted,
                      struct vg_err *err)
{
    *groups_deleted = 0;
    struct expiry x = { .b = kv_batch_new(), .deleted = groups_deleted };
    if (!x.b)
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    uint8_t at[GKEY_LEN];
    gkey(at, 0);
    bool done = false;
    int rc = 0;
    while (rc == 0 && !done) {
        pthread_mutex_lock(&es->mu);
        rc = expire_round(es, &x, at, cutoff_ms, &done, err);
        pthread_mutex_unlock(&es->mu);
    }
    kv_batch_free(x.b);
    return rc;
}
