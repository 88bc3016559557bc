/* lchunk: the stored form of a log chunk, a run of one stream's entries in time order.
 *
 * Value layout (all varints as in lentry.h):
 *   u8  'L'                 magic
 *   u8  1                   version
 *   varint(zigzag(mint))    oldest timestamp (ns)
 *   uvarint maxt - mint     newest timestamp relative to mint
 *   uvarint n               entries (>= 1)
 *   uvarint raw_len         bytes of the uncompressed payload (<= LCHUNK_MAX_RAW)
 *   uvarint bytes           sum of lentry_bytes over the entries (for stats / volume)
 *   filter                  lfilter stored form over the lines and metadata
 *   zstd frame              the payload: n entries encoded as in lentry.h, sorted by t
 *                           (ties keep arrival order), each relative to the previous
 *                           entry's t (the first relative to mint)
 * Everything before the zstd frame can be read without decompressing, so time checks,
 * stats and token filters cost no decompression.
 *
 * lchunk_writer and lchunk_dctx belong to one thread at a time; the other functions are
 * pure and thread-safe. zstd is included only by lchunk.c. */
#ifndef LCHUNK_H
#define LCHUNK_H

#include "../base/vg_buf.h"
#include "../base/vg_err.h"
#include "lentry.h"
#include "lfilter.h"

#include <stddef.h>
#include <stdint.h>

#define LCHUNK_MAGIC 'L'
#define LCHUNK_VERSION 1
#define LCHUNK_MAX_RAW (64u << 20) /* refuse to inflate a payload larger than this */

struct lchunk_header {
    int64_t mint, maxt;
    uint32_t n;
    uint64_t raw_len;
    uint64_t bytes;
    struct lfilter filter;
    const char *payload; /* the zstd frame, pointing into the decoded value */
    size_t payload_len;
};

/* Parses everything before the payload. 0 or VG_EINVAL naming the bad field. */
int lchunk_header_decode(const char *p, size_t len, struct lchunk_header *h,
                         struct vg_err *err);

/* Encodes chunks: owns a zstd context, a filter builder and a scratch buffer. */
struct lchunk_writer;
/* level is the zstd level (1..19). NULL when out of memory. */
struct lchunk_writer *lchunk_writer_new(int level);
void lchunk_writer_free(struct lchunk_writer *w); /* accepts NULL */
/* Appends the chunk value of es[0..n) (n >= 1, sorted by t) to out.
 * 0, VG_ENOMEM, VG_ETOOLARGE (payload over LCHUNK_MAX_RAW) or VG_EINVAL (zstd). */
int lchunk_encode(struct lchunk_writer *w, const struct lentry *es, size_t n,
                  struct vg_buf *out, struct vg_err *err);

/* A decompressed chunk with an index of its entries. */
struct lchunk_view {
    char *raw;       /* payload bytes (vg_malloc'ed) */
    size_t raw_len;
    int64_t *t;      /* t[i] of entry i, non-decreasing */
    uint32_t *off;   /* offset in raw of entry i's metadata count (just after its t) */
    uint32_t n;
    uint64_t line_bytes; /* sum of the entries' line lengths */
};
struct lchunk_dctx;
struct lchunk_dctx *lchunk_dctx_new(void); /* NULL when out of memory */
void lchunk_dctx_free(struct lchunk_dctx *d);
/* Inflates h's payload and checks every entry (count, order, bounds, sizes), so that
 * lchunk_entry cannot fail afterwards. 0, VG_EINVAL (corrupt), VG_ENOMEM. The view is
 * freed with lchunk_view_free even on failure. */
int lchunk_open(struct lchunk_dctx *d, const struct lchunk_header *h, struct lchunk_view *v,
                struct vg_err *err);
void lchunk_view_free(struct lchunk_view *v);
/* Entry i of an opened view; metadata goes to meta (room for LENTRY_MAX_META). */
void lchunk_entry(const struct lchunk_view *v, uint32_t i, struct lentry *e, struct label *meta);

#endif
