/* wal: encoding and decoding of write-ahead records; the format is in wal.h. Decoding
 * never reads outside the value and rejects truncated varints and counts that do not
 * fit the remaining bytes, since a record could be damaged on disk. */
#include "wal.h"

#include <string.h>

void wal_key(unsigned char out[WAL_KEY_LEN], uint64_t seq)
{
    out[0] = WAL_PREFIX;
    for (int i = 0; i < 8; i++)
        out[1 + i] = (unsigned char)(seq >> (56 - 8 * i));
}

bool wal_key_parse(const char *k, size_t len, uint64_t *seq)
{
    if (len != WAL_KEY_LEN || k[0] != WAL_PREFIX)
        return false;
    uint64_t s = 0;
    for (int i = 1; i < WAL_KEY_LEN; i++)
        s = s << 8 | (unsigned char)k[i];
    *seq = s;
    return true;
}

void wal_begin(struct wal_writer *w, struct vg_buf *b)
{
    w->b = b;
    w->prev_t = 0;
    w->prev_id = 0;
    vg_buf_putc(b, (char)WAL_VERSION);
}

void wal_reserve(struct wal_writer *w, size_t ngroups, size_t nsamples)
{
    vg_buf_reserve(w->b, ngroups * WAL_GROUP_MAX + nsamples * WAL_SAMPLE_MAX);
}

static bool get_uvarint(struct wal_reader *r, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end)
            return false;
        unsigned char c = *r->p++;
        if (shift == 63 && c > 1)
            return false;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

int wal_reader_init(struct wal_reader *r, const char *rec, size_t len, struct vg_err *err)
{
    memset(r, 0, sizeof *r);
    r->p = (const unsigned char *)rec;
    r->end = r->p + len;
    if (len < 1 || (r->p[0] != WAL_VERSION && r->p[0] != WAL_VERSION_1))
        return vg_err_set(err, VG_EINVAL, "wal record: unknown version %d (want %d or %d)",
                          len ? r->p[0] : -1, WAL_VERSION_1, WAL_VERSION);
    r->version = *r->p++;
    return 0;
}

int wal_next_group(struct wal_reader *r, struct wal_group *g, struct vg_err *err)
{
    int64_t t;
    double v;
    while (r->left && wal_next_sample(r, &t, &v))
        ; /* skip what the caller did not read */
    if (r->bad)
        return vg_err_set(err, VG_EINVAL, "wal record: truncated sample");
    if (r->p == r->end)
        return 0;
    uint64_t id, nin, nooo;
    size_t before = (size_t)(r->end - r->p);
    if (!get_uvarint(r, &id) || !get_uvarint(r, &nin) || !get_uvarint(r, &nooo) ||
        nin > UINT32_MAX || nooo > UINT32_MAX || (nin + nooo) * 9 > before)
        return vg_err_set(err, VG_EINVAL, "wal record: bad group header %zu bytes before the end",
                          before);
    if (r->version == WAL_VERSION_1) {
        r->prev_t = 0;
    } else {
        id = r->prev_id + ((id >> 1) ^ (uint64_t)-(int64_t)(id & 1));
        r->prev_id = id;
    }
    g->id = id;
    g->n_inorder = (uint32_t)nin;
    g->n_ooo = (uint32_t)nooo;
    r->left = (uint32_t)(nin + nooo);
    return 1;
}

bool wal_next_sample(struct wal_reader *r, int64_t *t, double *v)
{
    if (!r->left || r->bad)
        return false;
    uint64_t z;
    if (!get_uvarint(r, &z) || r->end - r->p < 8) {
        r->bad = true;
        return false;
    }
    uint64_t d = (z >> 1) ^ (uint64_t)-(int64_t)(z & 1);
    r->prev_t = (int64_t)((uint64_t)r->prev_t + d);
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++)
        bits |= (uint64_t)r->p[i] << (8 * i);
    r->p += 8;
    memcpy(v, &bits, 8);
    *t = r->prev_t;
    r->left--;
    return true;
}
