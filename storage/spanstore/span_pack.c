/* span_pack: see span_pack.h; the version-4 chunk format is in span.h ("Chunks").
 *
 * Why the bytes are the same as span_encode_shared + span_chunk_add: both write each
 * entry with the same pieces of span.c. The ids (span_chunk_w_ids), start
 * (span_chunk_w_start), strings (span_chunk_w_str, one string table) and the fields
 * around them (span_w_shared, span_w_tail, the very walkers span_encode uses, here
 * with strings packed) are written in the version-1 order, and the entry's
 * bookkeeping is span_chunk_w_packed. span_chunk_add packs every encoding
 * span_encode writes (it refuses only bytes span_encode never writes), so the
 * remaining choices are:
 *   the length n: span_encoded_rest_size + span_encoded_shared_size, exact;
 *   verbatim (tag 0) exactly when n > SPAN_CHUNK_V4_MAX_SPAN, the span then encoded
 *   into the chunk by span_encode itself;
 *   the shared part's carrier: span_chunk_add takes the first carrier whose version-1
 *   shared part is byte-equal. Carriers are pairwise different (a span becomes one
 *   only when none matches), so at most one matches. A span whose shared part comes
 *   from the same memory as a carrier's (equal struct span_chunk_w_src) has its bytes
 *   and so its carrier, without encoding or sizing the part again: the common case,
 *   as a decoder hands every span of one ResourceSpans and scope the same strings and
 *   arrays. Otherwise the part is encoded (into the writer's copy when it fits there,
 *   where a new carrier keeps it) and looked up by span_chunk_w_find_shared like
 *   span_chunk_add does; a match then also remembers this span's memory.
 * Room: a packed entry is at most 2n + 48 bytes (as span_chunk_add reserves: a literal
 * is at most a byte longer than its str, the ids and start at most 10), so one reserve
 * precedes the unchecked writes. */
#include "span_pack.h"

#include <assert.h>
#include <string.h>

static struct span_chunk_w_src src_of(const struct span *s)
{
    return (struct span_chunk_w_src){ .res = s->resource_attrs,
                                      .scope = s->scope_attrs,
                                      .nres = s->nresource_attrs,
                                      .nscope = s->nscope_attrs,
                                      .service = s->service,
                                      .scope_name = s->scope_name,
                                      .scope_version = s->scope_version,
                                      .dropped = s->dropped_resource_attrs };
}

/* The carrier whose shared part lies in the same memory as src's, or -1. */
static int same_src(const struct span_chunk_w *w, const struct span_chunk_w_src *src)
{
    for (size_t i = 0; i < w->nshared; i++)
        if (w->src[i].res == src->res && memcmp(&w->src[i], src, sizeof *src) == 0)
            return (int)i;
    return -1;
}

/* A span too long to pack: tag 0, its length, its version-1 encoding. */
static int add_verbatim(struct span_chunk_w *w, const struct span *s, size_t n,
                        struct vg_err *err)
{
    uint8_t *p = span_w_begin(w->out, (size_t)2 * SPAN_W_VARINT_MAX);
    if (!p)
        return 0;
    p = span_w_uvarint(p, 0);
    span_w_end(w->out, span_w_uvarint(p, n));
    int rc = span_encode(s, w->out, err);
    return rc == VG_ENOMEM ? 0 : rc; /* (out is marked failed) */
}

int span_pack_add(struct span_chunk_w *w, const struct span *s, size_t *enc_len,
                  struct vg_err *err)
{
    assert(w->version == SPAN_CHUNK_VERSION_4);
    *enc_len = 0;
    struct span_chunk_w_src src = src_of(s);
    int ref = same_src(w, &src); /* (its enums were checked with its carrier's) */
    size_t shlen = ref >= 0 ? w->shared_raw[ref] : span_encoded_shared_size(s);
    size_t rest = span_encoded_rest_size(s);
    if (!rest || !shlen)
        return span_check_enums(s, err);
    struct vg_buf *out = w->out;
    if (out->len == 0)
        vg_buf_putc(out, (char)w->version);
    size_t n = rest + shlen;
    *enc_len = n;
    if (n > SPAN_CHUNK_V4_MAX_SPAN)
        return add_verbatim(w, s, n, err);
    size_t max = 2 * n + 4 * (size_t)SPAN_W_VARINT_MAX + 8;
    bool in_copy = shlen <= SPAN_CHUNK_W_COPY - w->ncopy;
    uint8_t *p = span_w_begin(out, max + (ref < 0 && !in_copy ? shlen : 0));
    if (!p)
        return 0;
    const uint8_t *base = (const uint8_t *)out->p;
    uint8_t *raw = NULL;
    if (ref < 0) { /* past the entry's room when the copy has none */
        raw = in_copy ? w->copy + w->ncopy : p + max;
        span_w_shared(raw, s, NULL);
        ref = span_chunk_w_find_shared(w, raw, shlen);
        if (ref >= 0)
            w->src[ref] = src;
    }
    p = span_w_uvarint(p, ref < 0 ? 1 : (uint64_t)ref + 2);
    p = span_w_uvarint(p, n);
    size_t id_at;
    p = span_chunk_w_ids(w, p, s->trace_id, s->span_id, s->parent_span_id, &id_at);
    p = span_w_uvarint(p, s->flags);
    *p++ = (uint8_t)s->kind;
    *p++ = (uint8_t)s->status;
    p = span_w_uvarint(p, span_chunk_w_start(w, s->start_ns));
    p = span_w_uvarint(p, (uint64_t)s->end_ns - (uint64_t)s->start_ns);
    const struct vg_str head[] = { s->name, s->status_message, s->trace_state };
    for (size_t i = 0; i < sizeof head / sizeof head[0]; i++)
        p = span_chunk_w_str(w, p, head[i].p, head[i].len, head[i].len);
    struct span_chunk_part sh = { (size_t)(p - base), 0 };
    if (ref < 0)
        p = span_w_shared(p, s, w);
    sh.len = (size_t)(p - base) - sh.off;
    p = span_w_tail(p, s, w);
    assert((size_t)(p - (uint8_t *)base) <= out->len + max);
    size_t carriers = w->nshared;
    span_chunk_w_packed(w, ref < 0, sh, raw, shlen, id_at, s->trace_id, s->start_ns);
    if (w->nshared > carriers)
        w->src[carriers] = src;
    span_w_end(out, p);
    return 0;
}
