/* lwal: write-ahead record encoding; format in lwal.h. */
#include "lwal.h"

void lwal_begin(struct lwal_writer *w, struct vg_buf *b)
{
    w->b = b;
    w->prev = 0;
    vg_buf_putc(b, LWAL_VERSION);
}

void lwal_group(struct lwal_writer *w, uint64_t stream, uint32_t n)
{
    vg_buf_put_uvarint(w->b, stream);
    vg_buf_put_uvarint(w->b, n);
    w->prev = 0;
}

void lwal_entry(struct lwal_writer *w, const struct lentry *e)
{
    lentry_append(w->b, e, w->prev);
    w->prev = e->t;
}

int lwal_reader_init(struct lwal_reader *r, const char *p, size_t len, struct vg_err *err)
{
    r->left = 0;
    r->prev = 0;
    if (len < 1 || p[0] != LWAL_VERSION)
        return vg_err_set(err, VG_EINVAL, "log write-ahead record: unknown version");
    r->p = p + 1;
    r->end = p + len;
    return 0;
}

int lwal_next_group(struct lwal_reader *r, uint64_t *stream, uint32_t *n, struct vg_err *err)
{
    if (r->left)
        return vg_err_set(err, VG_EINVAL, "log write-ahead record: %u entries missing",
                          r->left);
    if (r->p == r->end)
        return 0;
    uint64_t id, cnt;
    if (!lentry_get_uvarint(&r->p, r->end, &id) || !lentry_get_uvarint(&r->p, r->end, &cnt))
        return vg_err_set(err, VG_EINVAL, "log write-ahead record: truncated group header");
    if (cnt == 0 || cnt > (uint64_t)(r->end - r->p))
        return vg_err_set(err, VG_EINVAL, "log write-ahead record: bad entry count %llu",
                          (unsigned long long)cnt);
    *stream = id;
    *n = (uint32_t)cnt;
    r->left = (uint32_t)cnt;
    r->prev = 0;
    return 1;
}

int lwal_next_entry(struct lwal_reader *r, struct lentry *e, struct label *meta,
                    struct vg_err *err)
{
    if (!r->left)
        return vg_err_set(err, VG_EINVAL, "log write-ahead record: no entry left in group");
    int rc = lentry_decode(&r->p, r->end, r->prev, e, meta, err);
    if (rc) {
        r->p = r->end; /* left stays non-zero: lwal_next_group reports it too */
        return vg_err_prefix(err, "log write-ahead record");
    }
    r->left--;
    r->prev = e->t;
    return 0;
}
