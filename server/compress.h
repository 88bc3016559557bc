/* compress: request-body decompression with a size cap, for every receiver.
 *
 * Wraps zlib (gzip and zlib/deflate framing) and snappy (block format, as Prometheus
 * remote write and Loki push use). Output goes into the request's arena; anything that
 * would decompress past max_out fails with VG_ETOOLARGE (a decompression bomb costs at
 * most max_out bytes). Malformed input is VG_EINVAL with the library's reason.
 * Thread-safe. Only this file includes zlib.h and snappy-c.h. */
#ifndef COMPRESS_H
#define COMPRESS_H

#include "../storage/base/vg_arena.h"
#include "../storage/base/vg_buf.h"
#include "../storage/base/vg_err.h"
#include "../storage/base/vg_str.h"

#include <stddef.h>

/* gzip or zlib-wrapped deflate (auto-detected from the header). */
int compress_inflate(const void *in, size_t n, size_t max_out, struct vg_arena *a,
                     struct vg_str *out, struct vg_err *err);
/* Snappy block format. out->p is followed by COMPRESS_SNAPPY_SLACK zero bytes inside the
 * same allocation (not counted in out->len), so a decoder may read whole 8-byte words
 * that start before the end. */
#define COMPRESS_SNAPPY_SLACK 16
int compress_snappy_decode(const void *in, size_t n, size_t max_out, struct vg_arena *a,
                           struct vg_str *out, struct vg_err *err);
/* Encoders, used for responses and by tests and the benchmark's load generator. */
int compress_snappy_encode(const void *in, size_t n, struct vg_buf *out, struct vg_err *err);
int compress_gzip_encode(const void *in, size_t n, struct vg_buf *out, struct vg_err *err);

#endif
