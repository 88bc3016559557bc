/* index: postings scans and id-set algebra; key format in index.h.
 *
 * Selection plan (Prometheus semantics, where a missing label equals ""):
 *   - a matcher that does not match "" selects a positive set: for name="v" the one
 *     posting list, otherwise the union of the lists of every value of name it matches;
 *   - a matcher that matches "" selects everything except the union of the lists of the
 *     values it rejects, so it is applied as a subtraction.
 * Positive sets are intersected, smallest-first by evaluating '=' before regexes; the
 * plan stops as soon as the intersection is empty. */
#include "index.h"

#include "../base/vg_alloc.h"
#include "labels.h"

#include <stdlib.h>
#include <string.h>

/* After this many consecutive keys of a value we do not want, seek past the value. */
#define SKIP_AFTER 16

void index_ids_free(struct index_ids *a)
{
    vg_free(a->v);
    memset(a, 0, sizeof *a);
}

int index_ids_push(struct index_ids *a, uint64_t id)
{
    if (a->n == a->cap) {
        size_t ncap = a->cap ? a->cap * 2 : 64;
        uint64_t *nv = vg_realloc(a->v, ncap * sizeof *nv);
        if (!nv)
            return VG_ENOMEM;
        a->v = nv;
        a->cap = ncap;
    }
    a->v[a->n++] = id;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

void index_ids_sort_unique(struct index_ids *a)
{
    bool sorted = true;
    for (size_t i = 1; i < a->n && sorted; i++)
        sorted = a->v[i - 1] < a->v[i];
    if (sorted)
        return;
    qsort(a->v, a->n, sizeof a->v[0], cmp_u64);
    size_t w = 0;
    for (size_t i = 0; i < a->n; i++)
        if (w == 0 || a->v[w - 1] != a->v[i])
            a->v[w++] = a->v[i];
    a->n = w;
}

void index_ids_intersect(struct index_ids *a, const struct index_ids *b)
{
    size_t i = 0, j = 0, w = 0;
    while (i < a->n && j < b->n) {
        if (a->v[i] < b->v[j])
            i++;
        else if (a->v[i] > b->v[j])
            j++;
        else {
            a->v[w++] = a->v[i++];
            j++;
        }
    }
    a->n = w;
}

void index_ids_subtract(struct index_ids *a, const struct index_ids *b)
{
    size_t i = 0, j = 0, w = 0;
    while (i < a->n) {
        while (j < b->n && b->v[j] < a->v[i])
            j++;
        if (j < b->n && b->v[j] == a->v[i])
            i++;
        else
            a->v[w++] = a->v[i++];
    }
    a->n = w;
}

static uint64_t get_u64be(const char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | (unsigned char)p[i];
    return v;
}

void index_key(struct vg_buf *b, struct vg_str name, struct vg_str value, uint64_t id)
{
    vg_buf_putc(b, INDEX_PREFIX);
    vg_buf_append(b, name.p, name.len);
    vg_buf_putc(b, 0);
    vg_buf_append(b, value.p, value.len);
    vg_buf_putc(b, 0);
    vg_buf_put_u64be(b, id);
}

/* Key prefix 'P' name 0x00 [value 0x00]. */
static void prefix(struct vg_buf *b, struct vg_str name, const struct vg_str *value)
{
    vg_buf_reset(b);
    vg_buf_putc(b, INDEX_PREFIX);
    vg_buf_append(b, name.p, name.len);
    vg_buf_putc(b, 0);
    if (value) {
        vg_buf_append(b, value->p, value->len);
        vg_buf_putc(b, 0);
    }
}

static int finish(struct kv_iter *it, struct vg_buf *kb, int rc, struct vg_err *err)
{
    if (rc == 0 && vg_buf_failed(kb))
        rc = vg_err_set(err, VG_ENOMEM, "index: out of memory building a key");
    if (rc == 0 && it)
        rc = kv_iter_error(it, err);
    kv_iter_free(it);
    vg_buf_free(kb);
    return rc;
}

static int nomem(struct vg_err *err)
{
    return vg_err_set(err, VG_ENOMEM, "index: out of memory collecting series ids");
}

/* Appends the ids of the posting entry at it (key k, klen bytes, separator at
 * k[klen - 9]) to out, unsorted across entries. */
static int entry_push(struct kv_iter *it, const char *k, size_t klen, struct index_ids *out,
                      struct vg_err *err)
{
    uint64_t id = get_u64be(k + klen - 8);
    if (k[klen - 9] == 0)
        return index_ids_push(out, id) == 0 ? 0 : nomem(err);
    size_t vlen;
    const char *v = kv_iter_value(it, &vlen);
    int rc = index_block_decode(v, vlen, id, out, err);
    if (rc == VG_EINVAL)
        rc = vg_err_prefix(err, "index: postings block of \"%.*s\"",
                           (int)(klen - 9 > 200 ? 200 : klen - 9), k + 1);
    return rc;
}

/* Ids of name="value" (value non-empty), appended to out in increasing order. */
static int postings(struct kv *kv, struct vg_str name, struct vg_str value,
                    struct index_ids *out, struct vg_err *err)
{
    struct vg_buf kb;
    vg_buf_init(&kb);
    prefix(&kb, name, &value);
    if (kb.len)
        kb.len--; /* 'P' name 0x00 value: the entries go on with separator 0x00 or 0x01 */
    struct kv_iter *it = vg_buf_failed(&kb) ? NULL : kv_iter_new(kv, NULL, true);
    if (!it)
        return finish(NULL, &kb, nomem(err), err);
    int rc = 0;
    size_t n0 = out->n;
    for (kv_iter_seek(it, kb.p, kb.len); rc == 0 && kv_iter_has_prefix(it, kb.p, kb.len);
         kv_iter_next(it)) {
        size_t klen;
        const char *k = kv_iter_key(it, &klen);
        if (klen > kb.len && (unsigned char)k[kb.len] > 1)
            break; /* past the pair: a longer value */
        if (klen == kb.len + 9)
            rc = entry_push(it, k, klen, out, err);
    }
    if (rc == 0 && out->n > n0) {
        struct index_ids tail = { out->v + n0, out->n - n0, out->n - n0 };
        index_ids_sort_unique(&tail); /* blocks follow the one-id keys */
        out->n = n0 + tail.n;
    }
    return finish(it, &kb, rc, err);
}

static bool re_meta(char c)
{
    return c && strchr("\\.+*?()|[]{}^$", c) != NULL;
}

/* Whether the regex re has a '|' outside every group and bracket expression, so that a
 * literal run at its start is not a prefix of every match. Conservative on anything it
 * does not follow. */
static bool re_top_alternation(const char *re, size_t len)
{
    int depth = 0;
    for (size_t i = 0; i < len; i++) {
        char c = re[i];
        if (c == '\\') {
            i++;
        } else if (c == '[') { /* to the closing ']': "[]a]" and "[^]a]" hold a ']' */
            i++;
            if (i < len && re[i] == '^')
                i++;
            if (i < len && re[i] == ']')
                i++;
            while (i < len && re[i] != ']')
                i += re[i] == '\\' ? 2 : 1;
        } else if (c == '(') {
            depth++;
        } else if (c == ')') {
            depth--;
        } else if (c == '|' && depth <= 0) {
            return true;
        }
    }
    return false;
}

/* The literal bytes every match of the anchored regex re starts with (Prometheus's
 * FastRegexMatcher does the same): the run before the first metacharacter, less its
 * last byte when a quantifier follows ("ab*" -> "a"); 0 when there is a top-level
 * alternation. */
static size_t re_literal_prefix(const char *re, size_t len)
{
    size_t n = 0;
    while (n < len && !re_meta(re[n]) && (unsigned char)re[n] >= 0x20)
        n++;
    if (n < len && (re[n] == '*' || re[n] == '?' || re[n] == '{'))
        n = n ? n - 1 : 0;
    if (n && re_top_alternation(re + n, len - n))
        return 0;
    return n;
}

/* For a regex that is only literals separated by '|' ("a|b|c", each non-empty, no
 * metacharacter), the union of their postings: one seek per value instead of a scan of
 * every value of the name. 1 when done (or an error, in *rc), 0 when re is not such a
 * set. */
static int literal_set(struct kv *kv, const struct matcher *m, struct index_ids *out,
                       int *rc, struct vg_err *err)
{
    const char *re = m->value;
    size_t len = m->value_len;
    for (size_t i = 0; i < len; i++)
        if ((re_meta(re[i]) && re[i] != '|') || (unsigned char)re[i] < 0x20 ||
            (re[i] == '|' && (i == 0 || i + 1 == len || re[i + 1] == '|')))
            return 0;
    if (len == 0)
        return 0;
    *rc = 0;
    for (size_t i = 0; i < len && *rc == 0;) {
        size_t j = i;
        while (j < len && re[j] != '|')
            j++;
        *rc = postings(kv, vg_str_c(m->name), (struct vg_str){ re + i, j - i }, out, err);
        i = j + 1;
    }
    if (*rc == 0)
        index_ids_sort_unique(out);
    return 1;
}

/* Union of the ids of every non-empty value v of name with matcher_matches(m, v) ==
 * want, sorted. A regex's literal prefix narrows the scan to the values that start with
 * it; the regex is evaluated once per distinct value, never per series. */
static int postings_where(struct kv *kv, const struct matcher *m, bool want,
                          struct index_ids *out, struct vg_err *err)
{
    int set_rc;
    if (want && m->op == MATCH_RE && literal_set(kv, m, out, &set_rc, err))
        return set_rc;
    struct vg_str name = vg_str_c(m->name);
    struct vg_buf kb, last;
    vg_buf_init(&kb);
    vg_buf_init(&last);
    prefix(&kb, name, NULL);
    size_t nlen = kb.len; /* 'P' name 0x00 */
    if (want && m->op == MATCH_RE)
        vg_buf_append(&kb, m->value, re_literal_prefix(m->value, m->value_len));
    struct kv_iter *it = vg_buf_failed(&kb) ? NULL : kv_iter_new(kv, NULL, true);
    if (!it)
        return finish(NULL, &kb, nomem(err), err);
    size_t plen = kb.len; /* the scan stays within keys starting with kb's plen bytes */
    bool have_last = false, last_ok = false;
    unsigned unwanted_run = 0;
    int rc = 0;
    kv_iter_seek(it, kb.p, plen);
    while (rc == 0 && kv_iter_has_prefix(it, kb.p, plen)) {
        size_t klen;
        const char *k = kv_iter_key(it, &klen);
        if (klen < nlen + 9 || (unsigned char)k[klen - 9] > 1) {
            kv_iter_next(it); /* not a posting key of ours: skip */
            continue;
        }
        struct vg_str v = { k + nlen, klen - 9 - nlen };
        if (!have_last || !vg_str_eq(v, (struct vg_str){ last.p, last.len })) {
            vg_buf_reset(&last);
            vg_buf_append(&last, v.p, v.len);
            if (vg_buf_failed(&last)) {
                rc = nomem(err);
                break;
            }
            have_last = true;
            last_ok = matcher_matches(m, v) == want;
            unwanted_run = 0;
        }
        if (last_ok) {
            rc = entry_push(it, k, klen, out, err);
            kv_iter_next(it);
        } else if (++unwanted_run < SKIP_AFTER) {
            kv_iter_next(it);
        } else {
            /* Seek past every key of this value: 'P' name 0x00 value 0x02 (built after
             * kb's first plen bytes, which stay the scan's bound). */
            kb.len = plen;
            vg_buf_putc(&kb, INDEX_PREFIX);
            vg_buf_append(&kb, name.p, name.len);
            vg_buf_putc(&kb, 0);
            vg_buf_append(&kb, last.p, last.len);
            vg_buf_putc(&kb, 2);
            if (vg_buf_failed(&kb)) {
                rc = nomem(err);
                break;
            }
            kv_iter_seek(it, kb.p + plen, kb.len - plen);
            kb.len = plen;
        }
    }
    vg_buf_free(&last);
    rc = finish(it, &kb, rc, err);
    if (rc == 0)
        index_ids_sort_unique(out);
    return rc;
}

/* Positive set of a matcher that does not match "". */
static int positive(struct kv *kv, const struct matcher *m, struct index_ids *out,
                    struct vg_err *err)
{
    if (m->op == MATCH_EQ)
        return postings(kv, vg_str_c(m->name), (struct vg_str){ m->value, m->value_len },
                        out, err);
    return postings_where(kv, m, true, out, err);
}

/* Set to subtract for a matcher that matches "". */
static int negative(struct kv *kv, const struct matcher *m, struct index_ids *out,
                    struct vg_err *err)
{
    if (m->op == MATCH_NEQ && m->value_len > 0)
        return postings(kv, vg_str_c(m->name), (struct vg_str){ m->value, m->value_len },
                        out, err);
    return postings_where(kv, m, false, out, err);
}

int index_select(struct kv *kv, struct matcher *const *ms, size_t nms, struct index_ids *out,
                 struct vg_err *err)
{
    out->n = 0;
    size_t npos = 0;
    for (size_t i = 0; i < nms; i++)
        npos += !ms[i]->matches_empty;
    if (npos == 0)
        return vg_err_set(err, VG_EINVAL,
                          "at least one matcher must not match the empty string");
    struct index_ids tmp = { 0 };
    bool first = true;
    int rc = 0;
    /* Pass 0: positive '=' matchers; pass 1: other positive ones; pass 2: negatives. */
    for (int pass = 0; pass < 3 && rc == 0; pass++) {
        for (size_t i = 0; i < nms && rc == 0; i++) {
            const struct matcher *m = ms[i];
            bool pos = !m->matches_empty;
            bool eq = m->op == MATCH_EQ;
            if ((pass == 0 && !(pos && eq)) || (pass == 1 && !(pos && !eq)) ||
                (pass == 2 && pos))
                continue;
            if (!first && out->n == 0)
                break;
            struct index_ids *dst = first ? out : &tmp;
            dst->n = 0;
            rc = pos ? positive(kv, m, dst, err) : negative(kv, m, dst, err);
            if (rc)
                break;
            if (first)
                first = false;
            else if (pos)
                index_ids_intersect(out, &tmp);
            else
                index_ids_subtract(out, &tmp);
        }
    }
    index_ids_free(&tmp);
    if (rc)
        out->n = 0;
    return rc;
}

/* Skip-scan over distinct names (value == false) or values of name. */
static int distinct(struct kv *kv, const struct vg_str *name, index_str_fn fn, void *ctx,
                    struct vg_err *err)
{
    struct vg_buf kb;
    vg_buf_init(&kb);
    if (name)
        prefix(&kb, *name, NULL);
    else
        vg_buf_putc(&kb, INDEX_PREFIX);
    size_t plen = kb.len;
    struct kv_iter *it = vg_buf_failed(&kb) ? NULL : kv_iter_new(kv, NULL, true);
    if (!it)
        return finish(NULL, &kb, nomem(err), err);
    int rc = 0;
    kv_iter_seek(it, kb.p, plen);
    while (rc == 0 && kv_iter_has_prefix(it, kb.p, plen)) {
        size_t klen;
        const char *k = kv_iter_key(it, &klen);
        const char *s = k + plen;
        size_t slen;
        if (name) {
            if (klen < plen + 9 || (unsigned char)k[klen - 9] > 1) {
                kv_iter_next(it);
                continue;
            }
            slen = klen - 9 - plen;
        } else {
            const char *z = memchr(s, 0, klen - plen);
            if (!z) {
                kv_iter_next(it);
                continue;
            }
            slen = (size_t)(z - s);
        }
        vg_buf_reset(&kb);
        if (name)
            prefix(&kb, *name, NULL);
        else
            vg_buf_putc(&kb, INDEX_PREFIX);
        vg_buf_append(&kb, s, slen);
        vg_buf_putc(&kb, name ? 2 : 1); /* past both entry kinds of the value; the name */
        if (vg_buf_failed(&kb)) {
            rc = nomem(err);
            break;
        }
        rc = fn(ctx, kb.p + plen, slen);
        kv_iter_seek(it, kb.p, kb.len);
        kb.len = plen;
    }
    return finish(it, &kb, rc, err);
}

int index_label_names(struct kv *kv, index_str_fn fn, void *ctx, struct vg_err *err)
{
    return distinct(kv, NULL, fn, ctx, err);
}

int index_label_values(struct kv *kv, struct vg_str name, index_str_fn fn, void *ctx,
                       struct vg_err *err)
{
    return distinct(kv, &name, fn, ctx, err);
}

/* ---- packed postings blocks (format in index.h) ---- */

void index_block_encode(struct vg_buf *b, const uint64_t *v, size_t n)
{
    vg_buf_put_uvarint(b, n);
    for (size_t i = 0; i < n; i++)
        vg_buf_put_uvarint(b, i ? v[i] - v[i - 1] : v[0]);
}

static int bad_block(struct vg_err *err, size_t off, const char *what)
{
    return vg_err_set(err, VG_EINVAL, "index: malformed postings block at offset %zu: %s",
                      off, what);
}

int index_block_decode(const char *p, size_t len, uint64_t last, struct index_ids *out,
                       struct vg_err *err)
{
    const unsigned char *u = (const unsigned char *)p;
    size_t pos = 0, start;
    uint64_t n, id = 0, d;
    if (!labels_get_uvarint(u, len, &pos, &n))
        return bad_block(err, 0, "bad count");
    if (n == 0 || n > INDEX_BLOCK_MAX_IDS)
        return bad_block(err, 0, "count out of range");
    if (out->cap - out->n < n) {
        size_t ncap = out->n + (size_t)n;
        uint64_t *nv = vg_realloc(out->v, ncap * sizeof *nv);
        if (!nv)
            return nomem(err);
        out->v = nv;
        out->cap = ncap;
    }
    size_t n0 = out->n;
    for (uint64_t i = 0; i < n; i++) {
        start = pos;
        if (!labels_get_uvarint(u, len, &pos, &d)) {
            out->n = n0;
            return bad_block(err, start, "truncated or overlong id");
        }
        if ((i > 0 && d == 0) || d > UINT64_MAX - id) {
            out->n = n0;
            return bad_block(err, start, d == 0 ? "ids not increasing" : "id overflow");
        }
        id += d;
        out->v[out->n++] = id;
    }
    if (pos != len || id != last) {
        out->n = n0;
        return bad_block(err, pos, pos != len ? "trailing bytes" : "last id differs from key");
    }
    return 0;
}

size_t index_entry_ids(const char *k, size_t klen, const char *v, size_t vlen)
{
    if (klen < 10 || k[klen - 9] == 0)
        return 1;
    size_t pos = 0;
    uint64_t n;
    if (!labels_get_uvarint((const unsigned char *)v, vlen, &pos, &n) || n > INDEX_BLOCK_MAX_IDS)
        return 0;
    return (size_t)n;
}

/* One pair being packed: its ids and what it has on disk now. */
struct pack {
    struct vg_buf pair;   /* 'P' name 0x00 value */
    struct index_ids ids; /* every id read */
    struct index_ids one; /* ids of its one-id keys */
    struct index_ids blk; /* last ids of its blocks */
    struct vg_buf kb, vb;
};

#define PACK_BATCH_KEYS 20000
#define PACK_BATCH_BYTES (4u << 20)

static void pack_key(struct pack *p, char sep, uint64_t id)
{
    vg_buf_reset(&p->kb);
    vg_buf_append(&p->kb, p->pair.p, p->pair.len);
    vg_buf_putc(&p->kb, sep);
    vg_buf_put_u64be(&p->kb, id);
}

/* Replaces the pair's entries (if it needs it) in b. */
static int pack_flush(struct pack *p, index_live_fn live, void *ctx, struct kv_batch *b,
                      size_t *packed, struct vg_err *err)
{
    if (!p->pair.len)
        return 0;
    index_ids_sort_unique(&p->ids);
    size_t before = p->ids.n;
    live(ctx, &p->ids);
    if (p->one.n == 0 && p->ids.n == before)
        return 0; /* blocks only, none dead */
    for (size_t i = 0; i < p->one.n; i++) {
        pack_key(p, 0, p->one.v[i]);
        kv_batch_delete(b, p->kb.p, p->kb.len);
    }
    for (size_t i = 0; i < p->blk.n; i++) {
        pack_key(p, 1, p->blk.v[i]);
        kv_batch_delete(b, p->kb.p, p->kb.len);
    }
    for (size_t i = 0; i < p->ids.n; i += INDEX_BLOCK_MAX_IDS) {
        size_t n = p->ids.n - i < INDEX_BLOCK_MAX_IDS ? p->ids.n - i : INDEX_BLOCK_MAX_IDS;
        pack_key(p, 1, p->ids.v[i + n - 1]);
        vg_buf_reset(&p->vb);
        index_block_encode(&p->vb, p->ids.v + i, n);
        kv_batch_put(b, p->kb.p, p->kb.len, p->vb.p, p->vb.len);
    }
    if (vg_buf_failed(&p->kb) || vg_buf_failed(&p->vb))
        return nomem(err);
    if (packed)
        (*packed)++;
    return 0;
}

int index_pack(struct kv *kv, index_live_fn live, void *ctx, size_t *packed,
               struct vg_err *err)
{
    struct pack p;
    memset(&p, 0, sizeof p);
    vg_buf_init(&p.pair);
    vg_buf_init(&p.kb);
    vg_buf_init(&p.vb);
    if (packed)
        *packed = 0;
    struct kv_batch *b = kv_batch_new();
    struct kv_iter *it = b ? kv_iter_new(kv, NULL, false) : NULL;
    int rc = it ? 0 : nomem(err);
    const char pfx = INDEX_PREFIX;
    if (it)
        kv_iter_seek(it, &pfx, 1);
    for (; rc == 0 && kv_iter_has_prefix(it, &pfx, 1); kv_iter_next(it)) {
        size_t klen;
        const char *k = kv_iter_key(it, &klen);
        if (klen < 11 || (unsigned char)k[klen - 9] > 1 || !memchr(k + 1, 0, klen - 10))
            continue; /* not a posting entry */
        size_t plen = klen - 9;
        if (plen != p.pair.len || memcmp(k, p.pair.p, plen) != 0) {
            rc = pack_flush(&p, live, ctx, b, packed, err);
            if (rc == 0 && (kv_batch_count(b) >= PACK_BATCH_KEYS ||
                            kv_batch_bytes(b) >= PACK_BATCH_BYTES)) {
                rc = kv_write(kv, b, false, err);
                kv_batch_clear(b);
            }
            vg_buf_reset(&p.pair);
            vg_buf_append(&p.pair, k, plen);
            p.ids.n = p.one.n = p.blk.n = 0;
            if (rc == 0 && vg_buf_failed(&p.pair))
                rc = nomem(err);
        }
        if (rc)
            break;
        uint64_t id = get_u64be(k + klen - 8);
        rc = index_ids_push(k[klen - 9] ? &p.blk : &p.one, id) ? nomem(err) : 0;
        if (rc == 0)
            rc = entry_push(it, k, klen, &p.ids, err);
    }
    if (rc == 0)
        rc = pack_flush(&p, live, ctx, b, packed, err);
    if (rc == 0 && kv_batch_count(b))
        rc = kv_write(kv, b, false, err);
    if (rc == 0 && it)
        rc = kv_iter_error(it, err);
    kv_iter_free(it);
    kv_batch_free(b);
    index_ids_free(&p.ids);
    index_ids_free(&p.one);
    index_ids_free(&p.blk);
    vg_buf_free(&p.pair);
    vg_buf_free(&p.kb);
    vg_buf_free(&p.vb);
    return rc;
}
