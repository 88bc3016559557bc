/* span_index: builds and parses the span store's keys and small records. The layout is
 * documented byte by byte at the top of spanstore.c; the record formats are:
 *
 *   trace summary ('T'): u8 version (2), u8 flags (bit 0: root seen, bit 1: the trace
 *       has spans under 'S' keys), uvarint spans, uvarint error spans, uvarint encoded
 *       span bytes, svarint start_ns, uvarint (end_ns - start_ns), str root service,
 *       str root span name, uvarint n, n chunk ids (8 bytes BE each: the keys of the
 *       trace's chunks in the chunk database, in write order). Version 1 (earlier
 *       stores) ends after the root name and has every span under 'S' keys: it decodes
 *       with legacy set and no chunk ids.
 *   stripe counters ('C'): uvarint spans, uvarint traces, uvarint bytes
 *
 * Strings in terms are uvarint-length-prefixed, so a term is prefix-free: the entries of
 * term "a" never share the prefix of term "ab". */
#include "span_index.h"

#include "../base/vg_alloc.h"

#include <string.h>

#define SUMMARY_VERSION 2
#define SUMMARY_VERSION_1 1
#define MAX_BUCKET UINT32_MAX

uint32_t span_index_bucket(int64_t t_ns)
{
    if (t_ns <= 0)
        return 0;
    int64_t b = t_ns / SPAN_INDEX_BUCKET_NS;
    return b > (int64_t)MAX_BUCKET ? MAX_BUCKET : (uint32_t)b;
}

int64_t span_index_bucket_start(uint32_t bucket)
{
    return (int64_t)bucket * SPAN_INDEX_BUCKET_NS;
}

uint8_t span_index_duration_bucket(int64_t dur_ns)
{
    uint64_t u = dur_ns > 0 ? (uint64_t)dur_ns >> 10 : 0;
    uint8_t bits = 0;
    while (u) {
        bits++;
        u >>= 1;
    }
    return bits;
}

int64_t span_index_duration_floor(uint8_t b)
{
    return b == 0 ? 0 : (int64_t)1 << (b - 1 + 10);
}

static void put_u32be(struct vg_buf *b, uint32_t v)
{
    uint8_t x[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
    vg_buf_append(b, x, 4);
}

static uint64_t get_u64be(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

void span_index_trace_prefix(struct vg_buf *b, const uint8_t *trace_id)
{
    vg_buf_putc(b, SPAN_KEY_SPAN);
    vg_buf_append(b, trace_id, SPAN_TRACE_ID_LEN);
}

void span_index_summary_key(struct vg_buf *b, const uint8_t *trace_id)
{
    vg_buf_putc(b, SPAN_KEY_SUMMARY);
    vg_buf_append(b, trace_id, SPAN_TRACE_ID_LEN);
}

void span_index_stats_key(struct vg_buf *b, unsigned stripe)
{
    vg_buf_putc(b, SPAN_KEY_STATS);
    vg_buf_putc(b, (char)(stripe >> 8));
    vg_buf_putc(b, (char)stripe);
}

void span_index_kind_prefix(struct vg_buf *out, uint32_t bucket, enum span_index_kind kind)
{
    vg_buf_putc(out, SPAN_KEY_BUCKET);
    put_u32be(out, bucket);
    vg_buf_putc(out, (char)kind);
}

/* Built for every term of every stored span, so the key is written through one
 * reservation (span_w_*) instead of a checked append per field. */
void span_index_term_key(struct vg_buf *out, uint32_t bucket, const struct span_index_term *t)
{
    uint8_t *p = span_w_begin(out, 8 + 2 * SPAN_W_VARINT_MAX + t->a.len + t->b.len);
    if (!p)
        return;
    *p++ = SPAN_KEY_BUCKET;
    *p++ = (uint8_t)(bucket >> 24);
    *p++ = (uint8_t)(bucket >> 16);
    *p++ = (uint8_t)(bucket >> 8);
    *p++ = (uint8_t)bucket;
    *p++ = (uint8_t)t->kind;
    switch (t->kind) {
    case SPAN_IX_ALL:
        break;
    case SPAN_IX_SERVICE:
    case SPAN_REG_SERVICE:
        p = span_w_str(p, t->a);
        break;
    case SPAN_IX_NAME:
        p = span_w_str(p, t->a);
        p = span_w_str(p, t->b);
        break;
    case SPAN_REG_OP:
        p = span_w_str(p, t->a);
        p = span_w_str(p, t->b);
        *p++ = t->op_kind;
        break;
    case SPAN_IX_STATUS:
    case SPAN_IX_DURATION:
        *p++ = t->byte;
        break;
    case SPAN_IX_ATTR:
        *p++ = t->byte;
        p = span_w_str(p, t->a);
        p = span_w_str(p, t->b);
        break;
    case SPAN_REG_KEY:
        *p++ = t->byte;
        p = span_w_str(p, t->a);
        break;
    case SPAN_REG_VALUE:
        *p++ = t->byte;
        p = span_w_str(p, t->a);
        *p++ = t->vtype;
        p = span_w_bytes(p, t->b.p, t->b.len);
        break;
    }
    span_w_end(out, p);
}

int span_index_term_parse(const char *key, size_t klen, struct span_index_term *t,
                          struct vg_err *err)
{
    memset(t, 0, sizeof *t);
    struct span_rd r;
    span_rd_init(&r, key, klen);
    if (span_rd_u8(&r, "prefix") != SPAN_KEY_BUCKET)
        return vg_err_set(err, VG_EINVAL, "span index: key is not a bucket key");
    span_rd_bytes(&r, 4, "bucket");
    t->kind = (enum span_index_kind)span_rd_u8(&r, "kind");
    switch (t->kind) {
    case SPAN_REG_SERVICE:
        t->a = span_rd_str(&r, "service");
        break;
    case SPAN_REG_OP:
        t->a = span_rd_str(&r, "service");
        t->b = span_rd_str(&r, "span name");
        t->op_kind = span_rd_u8(&r, "span kind");
        break;
    case SPAN_REG_KEY:
        t->byte = span_rd_u8(&r, "scope");
        t->a = span_rd_str(&r, "key");
        break;
    case SPAN_REG_VALUE:
        t->byte = span_rd_u8(&r, "scope");
        t->a = span_rd_str(&r, "key");
        t->vtype = span_rd_u8(&r, "value type");
        if (r.ok) {
            t->b = (struct vg_str){ key + r.off, klen - r.off };
            r.off = klen;
        }
        break;
    default:
        return vg_err_set(err, VG_EINVAL, "span index: kind '%c' is not a registry kind",
                          (char)t->kind);
    }
    if (!r.ok || r.off != klen)
        return vg_err_set(err, VG_EINVAL, "span index: malformed registry key (%s at %zu)",
                          r.what ? r.what : "trailing bytes", r.off);
    return 0;
}

/* Newest first: the biased time (ascending as a signed time) is inverted. */
void span_index_put_suffix(struct vg_buf *b, int64_t t_ns, const uint8_t *trace_id)
{
    vg_buf_put_u64be(b, ~((uint64_t)t_ns ^ (1ULL << 63)));
    vg_buf_append(b, trace_id, SPAN_TRACE_ID_LEN);
}

bool span_index_get_suffix(const char *key, size_t klen, int64_t *t_ns, uint8_t *trace_id)
{
    if (klen < 6 + SPAN_INDEX_SUFFIX_LEN)
        return false;
    const uint8_t *p = (const uint8_t *)key + klen - SPAN_INDEX_SUFFIX_LEN;
    *t_ns = (int64_t)(~get_u64be(p) ^ (1ULL << 63));
    memcpy(trace_id, p + 8, SPAN_TRACE_ID_LEN);
    return true;
}

void span_index_get_posting(const void *p, int64_t *t_ns, uint8_t *trace_id)
{
    *t_ns = (int64_t)(~get_u64be(p) ^ (1ULL << 63));
    memcpy(trace_id, (const uint8_t *)p + 8, SPAN_TRACE_ID_LEN);
}

void span_index_put_list_suffix(struct vg_buf *b, int64_t newest_ns, uint64_t write_id)
{
    vg_buf_put_u64be(b, ~((uint64_t)newest_ns ^ (1ULL << 63)));
    vg_buf_put_u64be(b, write_id);
}

bool span_index_get_list_suffix(const char *key, size_t klen, int64_t *newest_ns)
{
    if (klen < 6 + SPAN_INDEX_LIST_SUFFIX_LEN)
        return false;
    const uint8_t *p = (const uint8_t *)key + klen - SPAN_INDEX_LIST_SUFFIX_LEN;
    *newest_ns = (int64_t)(~get_u64be(p) ^ (1ULL << 63));
    return true;
}

bool span_index_list_count(size_t vlen, size_t *n)
{
    *n = vlen / SPAN_INDEX_SUFFIX_LEN;
    return vlen && vlen % SPAN_INDEX_SUFFIX_LEN == 0;
}

bool span_index_key_bucket(const char *key, size_t klen, uint32_t *bucket)
{
    if (klen < 5 || key[0] != SPAN_KEY_BUCKET)
        return false;
    const uint8_t *p = (const uint8_t *)key + 1;
    *bucket = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    return true;
}

void span_index_seg_key(struct vg_buf *b, uint64_t seg)
{
    vg_buf_putc(b, SPAN_KEY_SEGMENT);
    vg_buf_put_u64be(b, seg);
}

void span_index_seg_rec_key(struct vg_buf *b, uint64_t seg)
{
    static const uint8_t past_buckets[4] = { 0xff, 0xff, 0xff, 0xff };
    span_index_seg_key(b, seg);
    vg_buf_append(b, past_buckets, sizeof past_buckets);
}

bool span_index_seg_is_rec(const char *key, size_t klen)
{
    if (klen == SPAN_INDEX_SEG_KEY_LEN)
        return key[0] == SPAN_KEY_SEGMENT;
    return klen == SPAN_INDEX_SEG_REC_LEN && key[0] == SPAN_KEY_SEGMENT &&
           memcmp(key + SPAN_INDEX_SEG_KEY_LEN, "\xff\xff\xff\xff", 4) == 0;
}

void span_index_seg_term(struct vg_buf *b, uint64_t seg, const char *term_key, size_t tlen)
{
    span_index_seg_key(b, seg);
    if (tlen > 1)
        vg_buf_append(b, term_key + 1, tlen - 1);
}

void span_index_seg_pack_key(struct vg_buf *b, uint64_t seg, const char *term_key,
                             size_t tlen)
{
    span_index_seg_key(b, seg);
    if (tlen < 5)
        return;
    vg_buf_append(b, term_key + 1, 4);
    vg_buf_putc(b, SPAN_INDEX_PACK);
    vg_buf_append(b, term_key + 5, tlen - 5);
}

void span_index_pack_entry(struct vg_buf *b, const char *term_key, size_t tlen)
{
    size_t n = tlen > 5 ? tlen - 5 : 0;
    uint8_t c[2] = { (uint8_t)(n >> 8), (uint8_t)n };
    vg_buf_append(b, c, 2);
    if (n)
        vg_buf_append(b, term_key + 5, n);
}

bool span_index_pack_find(const char *v, size_t vlen, const char *term_key, size_t tlen,
                          const char **postings, size_t *n)
{
    const uint8_t *p = (const uint8_t *)v, *end = p + vlen;
    const char *want = term_key + 5;
    size_t wlen = tlen > 5 ? tlen - 5 : 0;
    *n = 0;
    *postings = NULL;
    while (p < end) {
        if (end - p < 2)
            return false;
        size_t kl = (size_t)p[0] << 8 | p[1];
        if ((size_t)(end - p) < 4 + kl)
            return false;
        const char *k = (const char *)p + 2;
        size_t cnt = (size_t)p[2 + kl] << 8 | p[3 + kl];
        p += 4 + kl;
        if ((size_t)(end - p) < cnt * SPAN_INDEX_SUFFIX_LEN)
            return false;
        size_t m = kl < wlen ? kl : wlen;
        int c = memcmp(k, want, m);
        if (c == 0 && kl == wlen) {
            *postings = (const char *)p;
            *n = cnt;
            return true;
        }
        if (c > 0 || (c == 0 && kl > wlen))
            return true; /* entries are sorted: past where the term would be */
        p += cnt * SPAN_INDEX_SUFFIX_LEN;
    }
    return true;
}

bool span_index_seg_of(const char *key, size_t klen, uint64_t *seg)
{
    if (klen < SPAN_INDEX_SEG_KEY_LEN || key[0] != SPAN_KEY_SEGMENT)
        return false;
    *seg = get_u64be((const uint8_t *)key + 1);
    return true;
}

/* Version byte, watermark (8), bucket count (4), then per bucket: bucket (4), oldest
 * and newest posting time (8 each, as stored signed), postings (8), the number of
 * listed terms (4) and their hashes (8 each, ascending); all big-endian. */
#define SEG_VERSION 1
#define SEG_BUCKET_LEN 32

void span_index_seg_encode(const struct span_index_seg *s, struct vg_buf *out)
{
    vg_buf_putc(out, SEG_VERSION);
    vg_buf_put_u64be(out, s->watermark);
    put_u32be(out, (uint32_t)s->nb);
    for (size_t i = 0; i < s->nb; i++) {
        put_u32be(out, s->b[i].bucket);
        vg_buf_put_u64be(out, (uint64_t)s->b[i].min_t);
        vg_buf_put_u64be(out, (uint64_t)s->b[i].max_t);
        vg_buf_put_u64be(out, s->b[i].n);
        put_u32be(out, s->b[i].nlisted);
        for (uint32_t j = 0; j < s->b[i].nlisted; j++)
            vg_buf_put_u64be(out, s->b[i].listed[j]);
    }
}

static uint32_t get_u32be(const uint8_t *q)
{
    return (uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 | (uint32_t)q[2] << 8 | q[3];
}

int span_index_seg_decode(uint64_t seg, const void *buf, size_t len, struct span_index_seg *s,
                          struct vg_err *err)
{
    const uint8_t *p = buf;
    memset(s, 0, sizeof *s);
    s->seg = seg;
    if (len < 13 || p[0] != SEG_VERSION)
        return vg_err_set(err, VG_EINVAL, "span index: segment %llu: directory record of %zu "
                          "bytes, version %d", (unsigned long long)seg, len, len ? p[0] : -1);
    uint32_t nb = get_u32be(p + 9);
    /* first pass: check the sizes, count the hashes */
    size_t off = 13, nh = 0;
    for (uint32_t i = 0; i < nb; i++) {
        if (len - off < SEG_BUCKET_LEN)
            return vg_err_set(err, VG_EINVAL, "span index: segment %llu: bucket %u cut at "
                              "byte %zu of %zu", (unsigned long long)seg, i, off, len);
        uint32_t nl = get_u32be(p + off + 28);
        off += SEG_BUCKET_LEN;
        if ((len - off) / 8 < nl)
            return vg_err_set(err, VG_EINVAL, "span index: segment %llu: %u listed terms "
                              "past the end at byte %zu", (unsigned long long)seg, nl, off);
        off += (size_t)nl * 8;
        nh += nl;
    }
    if (off != len)
        return vg_err_set(err, VG_EINVAL, "span index: segment %llu: %zu trailing bytes",
                          (unsigned long long)seg, len - off);
    s->watermark = get_u64be(p + 1);
    s->b = vg_malloc((nb ? nb : 1) * sizeof *s->b + nh * sizeof(uint64_t));
    if (!s->b)
        return vg_err_set(err, VG_ENOMEM, "span index: out of memory for a segment");
    uint64_t *h = (uint64_t *)(void *)(s->b + (nb ? nb : 1));
    off = 13;
    for (uint32_t i = 0; i < nb; i++) {
        const uint8_t *q = p + off;
        s->b[i] = (struct span_index_seg_bucket){ get_u32be(q), (int64_t)get_u64be(q + 4),
                                                  (int64_t)get_u64be(q + 12), get_u64be(q + 20),
                                                  h, get_u32be(q + 28) };
        off += SEG_BUCKET_LEN;
        for (uint32_t j = 0; j < s->b[i].nlisted; j++, off += 8)
            *h++ = get_u64be(p + off);
    }
    s->nb = nb;
    return 0;
}

bool span_index_seg_listed(const struct span_index_seg_bucket *b, uint64_t hash)
{
    size_t lo = 0, hi = b->nlisted;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (b->listed[mid] < hash)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < b->nlisted && b->listed[lo] == hash;
}

void span_index_summary_add(struct span_index_summary *sum, const struct span *s,
                            size_t enc_bytes)
{
    bool first = sum->spans == 0;
    if (first || s->start_ns < sum->start_ns)
        sum->start_ns = s->start_ns;
    if (first || s->end_ns > sum->end_ns)
        sum->end_ns = s->end_ns;
    /* Until the root arrives, the earliest span stands in for it (Tempo shows the same
     * idea as "root span not yet received"). */
    bool root = span_is_root(s);
    if (root ? !sum->has_root : (!sum->has_root && (first || s->start_ns <= sum->start_ns))) {
        sum->root_service = s->service;
        sum->root_name = s->name;
        sum->has_root = root;
    }
    sum->spans++;
    sum->errors += s->status == SPAN_STATUS_ERROR;
    sum->bytes += enc_bytes;
}

uint64_t span_index_summary_chunk(const struct span_index_summary *sum, size_t i)
{
    return get_u64be(sum->chunks + i * SPAN_INDEX_CHUNK_ID_LEN);
}

void span_index_summary_encode(const struct span_index_summary *sum, struct vg_buf *b)
{
    vg_buf_putc(b, SUMMARY_VERSION);
    vg_buf_putc(b, (char)((sum->has_root ? 1 : 0) | (sum->legacy ? 2 : 0)));
    vg_buf_put_uvarint(b, sum->spans);
    vg_buf_put_uvarint(b, sum->errors);
    vg_buf_put_uvarint(b, sum->bytes);
    span_put_svarint(b, sum->start_ns);
    vg_buf_put_uvarint(b, (uint64_t)sum->end_ns - (uint64_t)sum->start_ns);
    span_put_str(b, sum->root_service);
    span_put_str(b, sum->root_name);
    vg_buf_put_uvarint(b, sum->nchunks + (sum->new_chunk != 0));
    vg_buf_append(b, sum->chunks, sum->nchunks * SPAN_INDEX_CHUNK_ID_LEN);
    if (sum->new_chunk)
        vg_buf_put_u64be(b, sum->new_chunk);
}

int span_index_summary_decode(const void *buf, size_t len, struct span_index_summary *sum,
                              struct vg_err *err)
{
    struct span_rd r;
    span_rd_init(&r, buf, len);
    memset(sum, 0, sizeof *sum);
    uint8_t version = span_rd_u8(&r, "version");
    if (version != SUMMARY_VERSION && version != SUMMARY_VERSION_1)
        return vg_err_set(err, VG_EINVAL, "trace summary: unknown version %u", version);
    uint8_t flags = span_rd_u8(&r, "flags");
    sum->has_root = flags & 1;
    sum->legacy = version == SUMMARY_VERSION_1 || (flags & 2);
    sum->spans = span_rd_uvarint(&r, "spans");
    sum->errors = span_rd_uvarint(&r, "errors");
    sum->bytes = span_rd_uvarint(&r, "bytes");
    sum->start_ns = span_rd_svarint(&r, "start");
    sum->end_ns = (int64_t)((uint64_t)sum->start_ns + span_rd_uvarint(&r, "duration"));
    sum->root_service = span_rd_str(&r, "root service");
    sum->root_name = span_rd_str(&r, "root name");
    if (version != SUMMARY_VERSION_1) {
        uint64_t n = span_rd_uvarint(&r, "chunk count");
        if (r.ok && n > (len - r.off) / SPAN_INDEX_CHUNK_ID_LEN)
            return vg_err_set(err, VG_EINVAL, "trace summary: %llu chunk ids in %zu bytes",
                              (unsigned long long)n, len - r.off);
        sum->chunks = span_rd_bytes(&r, (size_t)n * SPAN_INDEX_CHUNK_ID_LEN, "chunk ids");
        sum->nchunks = (size_t)n;
    }
    if (!r.ok || r.off != len)
        return vg_err_set(err, VG_EINVAL, "trace summary: malformed %s at byte %zu",
                          r.what ? r.what : "end", r.off);
    return 0;
}

void span_index_counts_encode(const struct span_index_counts *c, struct vg_buf *b)
{
    vg_buf_put_uvarint(b, c->spans);
    vg_buf_put_uvarint(b, c->traces);
    vg_buf_put_uvarint(b, c->bytes);
}

int span_index_counts_decode(const void *buf, size_t len, struct span_index_counts *c,
                             struct vg_err *err)
{
    struct span_rd r;
    span_rd_init(&r, buf, len);
    c->spans = span_rd_uvarint(&r, "spans");
    c->traces = span_rd_uvarint(&r, "traces");
    c->bytes = span_rd_uvarint(&r, "bytes");
    if (!r.ok || r.off != len)
        return vg_err_set(err, VG_EINVAL, "span store counters: malformed at byte %zu", r.off);
    return 0;
}
