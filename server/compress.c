/* compress: see compress.h. */
#include "compress.h"

#include <snappy-c.h>
/* zlib then declares next_in as const, so callers' input needs no cast. */
#define ZLIB_CONST
#include <zlib.h>

int compress_inflate(const void *in, size_t n, size_t max_out, struct vg_arena *a,
                     struct vg_str *out, struct vg_err *err)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    /* 15 + 32: accept both gzip and zlib headers. */
    if (inflateInit2(&zs, 15 + 32) != Z_OK)
        return vg_err_set(err, VG_ENOMEM, "cannot initialise the gzip decoder");
    size_t cap = n * 4 + 1024;
    if (cap > max_out + 1)
        cap = max_out + 1;
    char *buf = vg_arena_alloc(a, cap);
    size_t len = 0;
    int rc = Z_OK;
    zs.next_in = in;
    zs.avail_in = (uInt)n;
    if (n > UINT32_MAX) {
        inflateEnd(&zs);
        return vg_err_set(err, VG_ETOOLARGE, "compressed body too large");
    }
    while (buf) {
        zs.next_out = (Bytef *)buf + len;
        zs.avail_out = (uInt)(cap - len);
        rc = inflate(&zs, Z_NO_FLUSH);
        len = cap - zs.avail_out;
        if (rc == Z_STREAM_END)
            break;
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            const char *why = zs.msg ? zs.msg : "corrupt data";
            inflateEnd(&zs);
            return vg_err_set(err, VG_EINVAL, "gzip: %s", why);
        }
        if (rc == Z_BUF_ERROR && zs.avail_in == 0 && zs.avail_out > 0) {
            inflateEnd(&zs);
            return vg_err_set(err, VG_EINVAL, "gzip: unexpected end of compressed data");
        }
        if (len > max_out) {
            inflateEnd(&zs);
            return vg_err_set(err, VG_ETOOLARGE,
                              "body is larger than %zu bytes once decompressed "
                              "(limits.max_decoded_bytes)", max_out);
        }
        if (zs.avail_out == 0) {
            size_t ncap = cap * 2;
            if (ncap > max_out + 1)
                ncap = max_out + 1;
            char *nb = vg_arena_alloc(a, ncap);
            if (!nb)
                break;
            memcpy(nb, buf, len);
            buf = nb;
            cap = ncap;
        }
    }
    inflateEnd(&zs);
    if (!buf)
        return vg_err_set(err, VG_ENOMEM, "out of memory while decompressing");
    if (len > max_out)
        return vg_err_set(err, VG_ETOOLARGE,
                          "body is larger than %zu bytes once decompressed (limits.max_decoded_bytes)",
                          max_out);
    out->p = buf;
    out->len = len;
    return 0;
}

int compress_snappy_decode(const void *in, size_t n, size_t max_out, struct vg_arena *a,
                           struct vg_str *out, struct vg_err *err)
{
    size_t len;
    if (snappy_uncompressed_length(in, n, &len) != SNAPPY_OK)
        return vg_err_set(err, VG_EINVAL, "snappy: corrupt block header");
    if (len > max_out)
        return vg_err_set(err, VG_ETOOLARGE,
                          "body would be %zu bytes once decompressed, more than %zu "
                          "(limits.max_decoded_bytes)", len, max_out);
    /* No separate snappy_validate_compressed_buffer pass: snappy_uncompress checks every
     * literal and copy against the output bounds itself and fails on corrupt input, and
     * the length it decodes into was capped above. */
    char *buf = vg_arena_alloc(a, len + COMPRESS_SNAPPY_SLACK);
    if (!buf)
        return vg_err_set(err, VG_ENOMEM, "out of memory while decompressing");
    memset(buf + len, 0, COMPRESS_SNAPPY_SLACK);
    size_t got = len;
    if (snappy_uncompress(in, n, buf, &got) != SNAPPY_OK || got != len)
        return vg_err_set(err, VG_EINVAL, "snappy: corrupt compressed data");
    out->p = buf;
    out->len = len;
    return 0;
}

int compress_snappy_encode(const void *in, size_t n, struct vg_buf *out, struct vg_err *err)
{
    size_t max = snappy_max_compressed_length(n);
    if (!vg_buf_reserve(out, max))
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    size_t got = max;
    if (snappy_compress(in, n, out->p + out->len, &got) != SNAPPY_OK)
        return vg_err_set(err, VG_EINTERNAL, "snappy: compression failed");
    out->len += got;
    return 0;
}

int compress_gzip_encode(const void *in, size_t n, struct vg_buf *out, struct vg_err *err)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return vg_err_set(err, VG_ENOMEM, "cannot initialise the gzip encoder");
    size_t bound = deflateBound(&zs, (uLong)n);
    if (!vg_buf_reserve(out, bound)) {
        deflateEnd(&zs);
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    }
    zs.next_in = in;
    zs.avail_in = (uInt)n;
    zs.next_out = (Bytef *)out->p + out->len;
    zs.avail_out = (uInt)bound;
    int rc = deflate(&zs, Z_FINISH);
    out->len += bound - zs.avail_out;
    deflateEnd(&zs);
    if (rc != Z_STREAM_END)
        return vg_err_set(err, VG_EINTERNAL, "gzip: compression failed");
    return 0;
}
