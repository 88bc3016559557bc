/* Fuzz target for storage/spanstore/span.c (and the small records of span_index.c):
 * decodes arbitrary bytes as a stored span; whatever decodes must re-encode, and the
 * re-encoding must decode to the same bytes again (the encoding is canonical after one
 * round). The header-only decoder must agree on the ids and times. The same bytes are
 * also walked as a stored value (a chunk of spans, span_chunk_next: every span it yields
 * lies inside the input or is a version-3 or -4 span rebuilt in the iterator, and the
 * spans that decode, written again as a version-4 chunk, walk back to the same
 * encodings byte for byte; packed from their decoded structs by span_pack_add, they
 * make the very same chunk), and
 * tried as a trace summary (one that decodes must survive a
 * re-encode), as an index segment's directory record (one that decodes re-encodes to
 * the same bytes), as a packed block of index terms (a term found lies inside the
 * input) and as a registry key, which must never crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_arena.h"
#include "../../storage/spanstore/span.h"
#include "../../storage/spanstore/span_index.h"
#include "../../storage/spanstore/span_pack.h"

/* The spans span_pack_add packs from struct span, decoded from copies of their
 * encodings that stay alive until the chunk is compared (span_pack_add compares the
 * pointers of spans' shared parts). */
struct packer {
    struct span_chunk_w w; /* about 20 KiB */
    struct vg_buf chunk;
    struct vg_buf keep; /* the copies, a pointer each */
    struct vg_arena *a;
    size_t kept;
    bool all; /* every span of the walk was packed */
};

static void pack_one(struct packer *p, const struct vg_buf *one)
{
    struct span s;
    struct vg_err err;
    size_t n;
    uint8_t *c = p->all && p->kept + one->len <= (8u << 20) ? vg_malloc(one->len) : NULL;
    if (c)
        memcpy(c, one->p, one->len);
    if (!c || span_decode(c, one->len, p->a, &s, &err) != 0) { /* only out of memory */
        vg_free(c);
        p->all = false;
        return;
    }
    vg_buf_append(&p->keep, &c, sizeof c);
    p->kept += one->len;
    if (span_pack_add(&p->w, &s, &n, &err) != 0 || n != one->len)
        abort();
}

/* Both ways of packing made the same chunk; frees what p holds. */
static void pack_check(struct packer *p, const struct vg_buf *chunk)
{
    if (p->all && !vg_buf_failed(chunk) && !vg_buf_failed(&p->chunk) &&
        !vg_buf_failed(&p->keep) &&
        (chunk->len != p->chunk.len ||
         (chunk->len && memcmp(chunk->p, p->chunk.p, chunk->len) != 0)))
        abort();
    for (size_t i = 0; i < p->keep.len / sizeof(void *); i++) {
        void *c;
        memcpy(&c, p->keep.p + i * sizeof c, sizeof c);
        vg_free(c);
    }
    vg_buf_free(&p->keep);
    vg_buf_free(&p->chunk);
    vg_arena_free(p->a);
}

/* The chunk must walk back to exactly the n encodings in encs (uvarint length, bytes). */
static void walk_back(const struct vg_buf *chunk, const struct vg_buf *encs, size_t n)
{
    if (!n || vg_buf_failed(chunk) || vg_buf_failed(encs))
        return;
    struct span_chunk_iter ci;
    span_chunk_iter_init(&ci, chunk->p, chunk->len);
    struct span_rd r;
    span_rd_init(&r, encs->p, encs->len);
    const void *enc;
    size_t elen;
    struct vg_err err;
    for (size_t i = 0; i < n; i++) {
        size_t want = (size_t)span_rd_uvarint(&r, "len");
        const uint8_t *w = span_rd_bytes(&r, want, "enc");
        if (span_chunk_next(&ci, &enc, &elen, &err) != 1 || elen != want ||
            memcmp(enc, w, want) != 0)
            abort();
    }
    if (span_chunk_next(&ci, &enc, &elen, &err) != 0)
        abort();
    span_chunk_iter_free(&ci);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vg_arena *a = vg_arena_new(4096);
    if (!a)
        return 0;
    vg_arena_set_limit(a, 64u << 20);
    struct span s, h;
    struct vg_err err;
    int rc = span_decode(data, size, a, &s, &err);
    int hrc = span_decode_header(data, size, &h, &err);
    if (rc == 0) {
        if (hrc != 0 || h.start_ns != s.start_ns || h.end_ns != s.end_ns ||
            memcmp(h.span_id, s.span_id, SPAN_ID_LEN) != 0)
            abort();
        struct vg_buf b1, b2;
        vg_buf_init(&b1);
        vg_buf_init(&b2);
        if (span_encode(&s, &b1, &err) != 0)
            abort();
        struct span d;
        if (span_decode(b1.p, b1.len, a, &d, &err) != 0)
            abort();
        if (span_encode(&d, &b2, &err) != 0 || b1.len != b2.len ||
            memcmp(b1.p, b2.p, b1.len) != 0)
            abort();
        for (size_t i = 0; i < s.nattrs; i++) {
            vg_buf_reset(&b2);
            span_attr_text(&s.attrs[i], &b2);
        }
        vg_buf_free(&b1);
        vg_buf_free(&b2);
    } else if (rc != VG_EINVAL && rc != VG_ENOMEM) {
        abort();
    }
    /* Walk the bytes as a stored value. Each span that decodes is re-encoded and added
     * to a fresh version-4 chunk (span_chunk_add), which must walk back to exactly those
     * encodings, in order. Every span the walk yields, decodable or not, also goes as it
     * is into a second chunk (the writer packs what it can and stores the rest
     * verbatim), which must give back those very bytes. */
    struct span_chunk_iter ci;
    span_chunk_iter_init(&ci, data, size);
    const void *enc;
    size_t elen;
    int n = 0;
    struct vg_buf chunk, encs, one, rawchunk, raws;
    vg_buf_init(&chunk);
    vg_buf_init(&encs);
    vg_buf_init(&one);
    vg_buf_init(&rawchunk);
    vg_buf_init(&raws);
    static struct span_chunk_w cw, rw; /* about 20 KiB each */
    span_chunk_w_init(&cw, &chunk);
    span_chunk_w_init(&rw, &rawchunk);
    static struct packer pk;
    vg_buf_init(&pk.chunk);
    vg_buf_init(&pk.keep);
    span_chunk_w_init(&pk.w, &pk.chunk);
    pk.a = vg_arena_new(4096);
    pk.kept = 0;
    pk.all = pk.a != NULL;
    if (pk.a)
        vg_arena_set_limit(pk.a, 64u << 20);
    size_t nenc = 0, nraw = 0;
    while (n < 1000 && (rc = span_chunk_next(&ci, &enc, &elen, &err)) == 1) {
        bool inside = (const uint8_t *)enc >= data && (const uint8_t *)enc + elen <= data + size;
        /* a version-4 span rebuilds up to its limit from string references */
        size_t most = ci.version == SPAN_CHUNK_VERSION_4 ? SPAN_CHUNK_V4_MAX_SPAN : 2 * size;
        bool rebuilt = enc == ci.scratch.p && elen == ci.scratch.len && elen <= most;
        if (!inside && !rebuilt)
            abort();
        vg_arena_reset(a);
        size_t off = elen / 4, len = elen / 4;
        if (span_decode(enc, elen, a, &s, &err) == 0) {
            vg_buf_reset(&one);
            if (span_encode_shared(&s, &one, &off, &len, &err) != 0 || off + len > one.len)
                abort();
            span_chunk_add(&cw, one.p, one.len, off, len);
            pack_one(&pk, &one);
            vg_buf_put_uvarint(&encs, one.len);
            vg_buf_append(&encs, one.p, one.len);
            nenc++;
        }
        if (elen > 0 && raws.len + elen <= (1u << 20)) {
            span_chunk_add(&rw, enc, elen, off, len);
            vg_buf_put_uvarint(&raws, elen);
            vg_buf_append(&raws, enc, elen);
            nraw++;
        }
        n++;
    }
    if (rc < 0 && rc != VG_EINVAL)
        abort();
    span_chunk_iter_free(&ci);
    pack_check(&pk, &chunk);
    walk_back(&chunk, &encs, nenc);
    walk_back(&rawchunk, &raws, nraw);
    vg_buf_free(&chunk);
    vg_buf_free(&encs);
    vg_buf_free(&one);
    vg_buf_free(&rawchunk);
    vg_buf_free(&raws);
    struct span_index_summary sum;
    if (span_index_summary_decode(data, size, &sum, &err) == 0) {
        /* A summary that decodes re-encodes (version 2, chunk list kept) to one that
         * decodes to the same fields. */
        struct vg_buf b;
        vg_buf_init(&b);
        span_index_summary_encode(&sum, &b);
        struct span_index_summary d;
        if (!vg_buf_failed(&b) &&
            (span_index_summary_decode(b.p, b.len, &d, &err) != 0 || d.spans != sum.spans ||
             d.start_ns != sum.start_ns || d.end_ns != sum.end_ns || d.legacy != sum.legacy ||
             d.nchunks != sum.nchunks ||
             (d.nchunks && memcmp(d.chunks, sum.chunks, d.nchunks * SPAN_INDEX_CHUNK_ID_LEN))))
            abort();
        vg_buf_free(&b);
    }
    struct span_index_seg seg;
    if (span_index_seg_decode(7, data, size, &seg, &err) == 0) {
        /* A segment directory record that decodes re-encodes to the same bytes. */
        struct vg_buf b;
        vg_buf_init(&b);
        span_index_seg_encode(&seg, &b);
        if (!vg_buf_failed(&b) && (b.len != size || memcmp(b.p, data, size) != 0))
            abort();
        vg_buf_free(&b);
        vg_free(seg.b);
    }
    /* As a packed block of an index segment: any term found lies inside the input. */
    static const char term[] = "X\x00\x07\x34\x1e" "s\x04" "cart";
    const char *pp;
    size_t np;
    if (span_index_pack_find((const char *)data, size, term, sizeof term - 1, &pp, &np) && np &&
        (pp < (const char *)data ||
         pp + np * SPAN_INDEX_SUFFIX_LEN > (const char *)data + size))
        abort();
    struct span_index_term t;
    span_index_term_parse((const char *)data, size, &t, &err);
    vg_arena_free(a);
    return 0;
}
