/* lchunk: chunk encoding and decoding; the value layout is in lchunk.h.
 *
 * zstd allocates through vg_malloc (ZSTD_customMem), so its memory is counted and
 * allocation-failure tests reach it too. The payload is compressed as one frame with
 * the content size recorded, which lchunk_open checks against raw_len before
 * allocating: a corrupt or hostile value cannot make it inflate more than it says. */
#define ZSTD_STATIC_LINKING_ONLY
#include "lchunk.h"

#include "../base/vg_alloc.h"

#include <string.h>
#include <zstd.h>
#include <zstd_errors.h>

struct lchunk_writer {
    ZSTD_CCtx *cctx;
    struct lfilter_builder *fb;
    struct vg_buf raw;
    int level;
};

struct lchunk_dctx {
    ZSTD_DCtx *dctx;
};

static void *zalloc(void *opaque, size_t n)
{
    (void)opaque;
    return vg_malloc(n);
}

static void zfree(void *opaque, void *p)
{
    (void)opaque;
    vg_free(p);
}

static const ZSTD_customMem ZMEM = { zalloc, zfree, NULL };

/* zstd's allocation failures are ours (vg_malloc); anything else is corrupt input
 * when decoding or a zstd problem when encoding. */
static int zcode(size_t z)
{
    if (ZSTD_getErrorCode(z) == ZSTD_error_memory_allocation)
        return VG_ENOMEM;
    return VG_EINVAL;
}

static uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

struct lchunk_writer *lchunk_writer_new(int level)
{
    struct lchunk_writer *w = vg_calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->level = level;
    vg_buf_init(&w->raw);
    w->cctx = ZSTD_createCCtx_advanced(ZMEM);
    w->fb = lfilter_builder_new();
    if (!w->cctx || !w->fb) {
        lchunk_writer_free(w);
        return NULL;
    }
    return w;
}

void lchunk_writer_free(struct lchunk_writer *w)
{
    if (!w)
        return;
    ZSTD_freeCCtx(w->cctx);
    lfilter_builder_free(w->fb);
    vg_buf_free(&w->raw);
    vg_free(w);
}

int lchunk_encode(struct lchunk_writer *w, const struct lentry *es, size_t n,
                  struct vg_buf *out, struct vg_err *err)
{
    vg_buf_reset(&w->raw);
    uint64_t bytes = 0;
    int64_t prev = es[0].t;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        lentry_append(&w->raw, &es[i], prev);
        prev = es[i].t;
        bytes += lentry_bytes(&es[i]);
        rc = lfilter_add_line(w->fb, es[i].line.p, es[i].line.len);
        for (size_t j = 0; j < es[i].nmeta && rc == 0; j++)
            rc = lfilter_add_meta(w->fb, es[i].meta[j].name, es[i].meta[j].value);
    }
    if (rc == 0 && vg_buf_failed(&w->raw))
        rc = VG_ENOMEM;
    if (rc == 0 && w->raw.len > LCHUNK_MAX_RAW)
        rc = vg_err_set(err, VG_ETOOLARGE, "log chunk: %zu payload bytes (at most %u)",
                        w->raw.len, LCHUNK_MAX_RAW);
    /* Always finish: it also empties the builder for the next chunk. */
    struct vg_buf filter;
    vg_buf_init(&filter);
    lfilter_finish(w->fb, &filter);
    if (rc == 0 && vg_buf_failed(&filter))
        rc = VG_ENOMEM;
    if (rc == 0) {
        vg_buf_putc(out, LCHUNK_MAGIC);
        vg_buf_putc(out, LCHUNK_VERSION);
        vg_buf_put_uvarint(out, zigzag(es[0].t));
        vg_buf_put_uvarint(out, (uint64_t)es[n - 1].t - (uint64_t)es[0].t);
        vg_buf_put_uvarint(out, n);
        vg_buf_put_uvarint(out, w->raw.len);
        vg_buf_put_uvarint(out, bytes);
        vg_buf_append(out, filter.p, filter.len);
        size_t bound = ZSTD_compressBound(w->raw.len);
        if (vg_buf_reserve(out, bound + 1)) {
            size_t z = ZSTD_compressCCtx(w->cctx, out->p + out->len, bound, w->raw.p,
                                         w->raw.len, w->level);
            if (ZSTD_isError(z))
                rc = vg_err_set(err, zcode(z), "log chunk: zstd: %s", ZSTD_getErrorName(z));
            else
                out->len += z;
        }
        if (rc == 0 && vg_buf_failed(out))
            rc = VG_ENOMEM;
    }
    vg_buf_free(&filter);
    if (rc == VG_ENOMEM)
        vg_err_set(err, VG_ENOMEM, "log chunk: out of memory encoding %zu entries", n);
    return rc;
}

int lchunk_header_decode(const char *p, size_t len, struct lchunk_header *h,
                         struct vg_err *err)
{
    const char *end = p + len;
    if (len < 2 || p[0] != LCHUNK_MAGIC || p[1] != LCHUNK_VERSION)
        return vg_err_set(err, VG_EINVAL, "log chunk: bad magic or version");
    p += 2;
    uint64_t zmint, span, n, raw, bytes;
    if (!lentry_get_uvarint(&p, end, &zmint) || !lentry_get_uvarint(&p, end, &span) ||
        !lentry_get_uvarint(&p, end, &n) || !lentry_get_uvarint(&p, end, &raw) ||
        !lentry_get_uvarint(&p, end, &bytes))
        return vg_err_set(err, VG_EINVAL, "log chunk: truncated header");
    h->mint = (int64_t)(zmint >> 1) ^ -(int64_t)(zmint & 1);
    h->maxt = (int64_t)((uint64_t)h->mint + span);
    if (span > INT64_MAX || h->maxt < h->mint)
        return vg_err_set(err, VG_EINVAL, "log chunk: time span overflows");
    if (n == 0 || n > UINT32_MAX || raw > LCHUNK_MAX_RAW || n > raw)
        return vg_err_set(err, VG_EINVAL, "log chunk: %llu entries in %llu bytes",
                          (unsigned long long)n, (unsigned long long)raw);
    h->n = (uint32_t)n;
    h->raw_len = raw;
    h->bytes = bytes;
    if (!lfilter_parse(&p, end, &h->filter))
        return vg_err_set(err, VG_EINVAL, "log chunk: malformed token filter");
    h->payload = p;
    h->payload_len = (size_t)(end - p);
    return 0;
}

struct lchunk_dctx *lchunk_dctx_new(void)
{
    struct lchunk_dctx *d = vg_calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->dctx = ZSTD_createDCtx_advanced(ZMEM);
    if (!d->dctx) {
        vg_free(d);
        return NULL;
    }
    return d;
}

void lchunk_dctx_free(struct lchunk_dctx *d)
{
    if (!d)
        return;
    ZSTD_freeDCtx(d->dctx);
    vg_free(d);
}

void lchunk_view_free(struct lchunk_view *v)
{
    vg_free(v->raw);
    vg_free(v->t);
    vg_free(v->off);
    memset(v, 0, sizeof *v);
}

/* Walks every entry once: fills the index and checks what lchunk_entry relies on. */
static int index_entries(const struct lchunk_header *h, struct lchunk_view *v,
                         struct vg_err *err)
{
    const char *p = v->raw, *end = v->raw + v->raw_len;
    int64_t prev = h->mint;
    struct label meta[LENTRY_MAX_META];
    for (uint32_t i = 0; i < h->n; i++) {
        struct lentry e;
        if (!lentry_decode_t(&p, end, prev, &e.t))
            return vg_err_set(err, VG_EINVAL, "log chunk: entry %u: truncated time", i);
        if (e.t < prev || e.t > h->maxt)
            return vg_err_set(err, VG_EINVAL, "log chunk: entry %u: time out of order", i);
        v->t[i] = e.t;
        v->off[i] = (uint32_t)(p - v->raw);
        int rc = lentry_decode_body(&p, end, &e, meta, err);
        if (rc)
            return vg_err_prefix(err, "log chunk: entry %u", i);
        v->line_bytes += e.line.len;
        prev = e.t;
    }
    if (p != end)
        return vg_err_set(err, VG_EINVAL, "log chunk: %zu bytes after the last entry",
                          (size_t)(end - p));
    if (v->t[0] != h->mint || v->t[h->n - 1] != h->maxt)
        return vg_err_set(err, VG_EINVAL, "log chunk: entries do not span the header's times");
    return 0;
}

int lchunk_open(struct lchunk_dctx *d, const struct lchunk_header *h, struct lchunk_view *v,
                struct vg_err *err)
{
    memset(v, 0, sizeof *v);
    unsigned long long fcs = ZSTD_getFrameContentSize(h->payload, h->payload_len);
    if (fcs == ZSTD_CONTENTSIZE_ERROR || fcs == ZSTD_CONTENTSIZE_UNKNOWN || fcs != h->raw_len)
        return vg_err_set(err, VG_EINVAL, "log chunk: payload is not a zstd frame of %llu bytes",
                          (unsigned long long)h->raw_len);
    v->raw = vg_malloc(h->raw_len + 1);
    v->t = vg_malloc(h->n * sizeof *v->t);
    v->off = vg_malloc(h->n * sizeof *v->off);
    if (!v->raw || !v->t || !v->off)
        return vg_err_set(err, VG_ENOMEM, "log chunk: out of memory inflating %llu bytes",
                          (unsigned long long)h->raw_len);
    size_t z = ZSTD_decompressDCtx(d->dctx, v->raw, h->raw_len, h->payload, h->payload_len);
    if (ZSTD_isError(z) || z != h->raw_len)
        return vg_err_set(err, ZSTD_isError(z) ? zcode(z) : VG_EINVAL, "log chunk: zstd: %s",
                          ZSTD_isError(z) ? ZSTD_getErrorName(z) : "short payload");
    v->raw_len = z;
    v->n = h->n;
    return index_entries(h, v, err);
}

void lchunk_entry(const struct lchunk_view *v, uint32_t i, struct lentry *e, struct label *meta)
{
    const char *p = v->raw + v->off[i];
    e->t = v->t[i];
    (void)lentry_decode_body(&p, v->raw + v->raw_len, e, meta, NULL); /* checked by open */
}
