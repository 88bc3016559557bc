/* Fuzz target for storage/logstore/lchunk.c and lwal.c: decodes arbitrary bytes as a
 * stored chunk value (header, token filter, zstd payload, entries) or, when the first
 * byte is 'W', the rest as a write-ahead record, as open and queries do with whatever
 * is on disk. A chunk that decodes is re-encoded and must decode to the same entries. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../storage/base/vg_alloc.h"
#include "../../storage/logstore/lchunk.h"
#include "../../storage/logstore/lwal.h"

static struct label meta[LENTRY_MAX_META];

static void wal(const char *p, size_t len)
{
    struct lwal_reader r;
    struct vg_err err;
    if (lwal_reader_init(&r, p, len, &err) != 0)
        return;
    uint64_t id;
    uint32_t n;
    int rc;
    while ((rc = lwal_next_group(&r, &id, &n, &err)) == 1) {
        struct lentry e;
        for (uint32_t i = 0; i < n; i++)
            if (lwal_next_entry(&r, &e, meta, &err) != 0)
                break;
    }
    if (rc == 0 && r.p != r.end)
        abort(); /* a clean end consumed every byte */
}

static void same_entries(const struct lchunk_view *a, const struct lchunk_view *b)
{
    static struct label m2[LENTRY_MAX_META];
    if (a->n != b->n)
        abort();
    for (uint32_t i = 0; i < a->n; i++) {
        struct lentry x, y;
        lchunk_entry(a, i, &x, meta);
        lchunk_entry(b, i, &y, m2);
        if (x.t != y.t || !vg_str_eq(x.line, y.line) || x.nmeta != y.nmeta)
            abort();
        for (size_t j = 0; j < x.nmeta; j++)
            if (!vg_str_eq(x.meta[j].name, y.meta[j].name) ||
                !vg_str_eq(x.meta[j].value, y.meta[j].value))
                abort();
    }
}

static void chunk(const char *p, size_t len)
{
    struct lchunk_header h;
    struct vg_err err;
    if (lchunk_header_decode(p, len, &h, &err) != 0)
        return;
    struct lchunk_dctx *d = lchunk_dctx_new();
    struct lchunk_view v;
    memset(&v, 0, sizeof v);
    if (!d || lchunk_open(d, &h, &v, &err) != 0) {
        lchunk_view_free(&v);
        lchunk_dctx_free(d);
        return;
    }
    /* Re-encode: copy the entries out (their metadata must stay put meanwhile). */
    struct lentry *es = vg_malloc(v.n * sizeof *es);
    struct label *ms = vg_malloc((size_t)v.n * LENTRY_MAX_META * sizeof *ms);
    struct lchunk_writer *w = lchunk_writer_new(1);
    struct vg_buf out;
    vg_buf_init(&out);
    if (es && ms && w) {
        for (uint32_t i = 0; i < v.n; i++)
            lchunk_entry(&v, i, &es[i], ms + (size_t)i * LENTRY_MAX_META);
        if (lchunk_encode(w, es, v.n, &out, &err) == 0) {
            struct lchunk_header h2;
            struct lchunk_view v2;
            if (lchunk_header_decode(out.p, out.len, &h2, &err) != 0 ||
                h2.mint != h.mint || h2.maxt != h.maxt || h2.n != h.n ||
                lchunk_open(d, &h2, &v2, &err) != 0)
                abort();
            same_entries(&v, &v2);
            lchunk_view_free(&v2);
        }
    }
    vg_buf_free(&out);
    lchunk_writer_free(w);
    vg_free(es);
    vg_free(ms);
    lchunk_view_free(&v);
    lchunk_dctx_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size && data[0] == 'W')
        wal((const char *)data + 1, size - 1);
    else
        chunk((const char *)data, size);
    return 0;
}
