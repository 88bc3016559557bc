/* lentry: entry encoding; format in lentry.h. */
#include "lentry.h"

#include <string.h>

static uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t unzigzag(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

size_t lentry_uvarint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

char *lentry_put_uvarint(char *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (char)(v | 0x80);
        v >>= 7;
    }
    *p++ = (char)v;
    return p;
}

bool lentry_get_uvarint_slow(const char **p, const char *end, uint64_t *v)
{
    const unsigned char *q = (const unsigned char *)*p;
    uint64_t r = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if ((const char *)q >= end)
            return false;
        unsigned char c = *q++;
        r |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = r;
            *p = (const char *)q;
            return true;
        }
    }
    return false;
}

uint64_t lentry_bytes(const struct lentry *e)
{
    uint64_t n = e->line.len;
    for (size_t i = 0; i < e->nmeta; i++)
        n += e->meta[i].name.len + e->meta[i].value.len;
    return n;
}

static size_t str_size(struct vg_str s)
{
    return lentry_uvarint_size(s.len) + s.len;
}

size_t lentry_size(const struct lentry *e, int64_t prev)
{
    size_t n = lentry_uvarint_size(zigzag((int64_t)((uint64_t)e->t - (uint64_t)prev)));
    n += lentry_uvarint_size(e->nmeta);
    for (size_t i = 0; i < e->nmeta; i++)
        n += str_size(e->meta[i].name) + str_size(e->meta[i].value);
    return n + str_size(e->line);
}

static char *put_str(char *p, struct vg_str s)
{
    p = lentry_put_uvarint(p, s.len);
    if (s.len)
        memcpy(p, s.p, s.len);
    return p + s.len;
}

char *lentry_put(char *p, const struct lentry *e, int64_t prev)
{
    p = lentry_put_uvarint(p, zigzag((int64_t)((uint64_t)e->t - (uint64_t)prev)));
    p = lentry_put_uvarint(p, e->nmeta);
    for (size_t i = 0; i < e->nmeta; i++) {
        p = put_str(p, e->meta[i].name);
        p = put_str(p, e->meta[i].value);
    }
    return put_str(p, e->line);
}

void lentry_append(struct vg_buf *b, const struct lentry *e, int64_t prev)
{
    size_t n = lentry_size(e, prev);
    if (!vg_buf_reserve(b, n + 1))
        return;
    lentry_put(b->p + b->len, e, prev);
    b->len += n;
    b->p[b->len] = 0;
}

static bool get_str(const char **p, const char *end, struct vg_str *s)
{
    uint64_t n;
    if (!lentry_get_uvarint(p, end, &n) || n > (uint64_t)(end - *p))
        return false;
    s->p = *p;
    s->len = (size_t)n;
    *p += n;
    return true;
}

bool lentry_decode_t(const char **p, const char *end, int64_t prev, int64_t *t)
{
    uint64_t z;
    if (!lentry_get_uvarint(p, end, &z))
        return false;
    *t = (int64_t)((uint64_t)prev + (uint64_t)unzigzag(z));
    return true;
}

int lentry_decode_body(const char **p, const char *end, struct lentry *e, struct label *meta,
                       struct vg_err *err)
{
    uint64_t nmeta;
    if (!lentry_get_uvarint(p, end, &nmeta))
        return vg_err_set(err, VG_EINVAL, "log entry: truncated metadata count");
    if (nmeta > LENTRY_MAX_META)
        return vg_err_set(err, VG_EINVAL, "log entry: %llu metadata pairs (at most %d)",
                          (unsigned long long)nmeta, LENTRY_MAX_META);
    for (uint64_t i = 0; i < nmeta; i++)
        if (!get_str(p, end, &meta[i].name) || !get_str(p, end, &meta[i].value))
            return vg_err_set(err, VG_EINVAL, "log entry: truncated metadata pair %llu",
                              (unsigned long long)i);
    e->meta = meta;
    e->nmeta = (size_t)nmeta;
    if (!get_str(p, end, &e->line))
        return vg_err_set(err, VG_EINVAL, "log entry: truncated line");
    return 0;
}

int lentry_decode(const char **p, const char *end, int64_t prev, struct lentry *e,
                  struct label *meta, struct vg_err *err)
{
    if (!lentry_decode_t(p, end, prev, &e->t))
        return vg_err_set(err, VG_EINVAL, "log entry: truncated timestamp");
    return lentry_decode_body(p, end, e, meta, err);
}
