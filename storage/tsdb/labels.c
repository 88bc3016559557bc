/* labels: sorting, validation, comparison, canonical encoding and hashing of label sets.
 * See labels.h for the API.
 *
 * Canonical encoding, for each label in name order:
 *   uvarint(len(name)) name uvarint(len(value)) value
 * uvarint is LEB128 (7 bits a byte, least significant group first, high bit = more).
 * Decoding accepts only what labels_encode produces for a valid label set: minimal
 * varints, lengths inside the buffer, names strictly increasing (so sorted and unique).
 * That keeps encode(decode(x)) == x, which LevelDB keys built from it rely on.
 *
 * Hash: our own 64-bit multiply-xorshift hash over the same byte stream as the canonical
 * encoding (lengths as u64 words, bytes read little-endian 8 at a time), finished with
 * the splitmix64 finaliser. It never depends on the host's endianness or word size, so
 * stored hashes stay valid across machines and versions: do not change it.
 */
#include "labels.h"

#include <stdlib.h>
#include <string.h>

static int cmp_label(const void *a, const void *b)
{
    const struct label *x = a, *y = b;
    int c = vg_str_cmp(x->name, y->name);
    return c ? c : vg_str_cmp(x->value, y->value);
}

/* Insertion sort for the usual handful of labels (no call per comparison, no work beyond
 * n - 1 comparisons when already sorted, which is how senders send them); qsort beyond. */
#define SORT_SMALL 16

void labels_sort(struct label *ls, size_t n)
{
    if (n > SORT_SMALL) {
        qsort(ls, n, sizeof *ls, cmp_label);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        struct label x = ls[i];
        size_t j = i;
        while (j > 0 && cmp_label(&ls[j - 1], &x) > 0) {
            ls[j] = ls[j - 1];
            j--;
        }
        ls[j] = x;
    }
}

int labels_check_unique(const struct label *ls, size_t n, struct vg_err *err)
{
    for (size_t i = 1; i < n; i++) {
        if (vg_str_eq(ls[i - 1].name, ls[i].name)) {
            int len = ls[i].name.len > 200 ? 200 : (int)ls[i].name.len;
            return vg_err_set(err, VG_EINVAL, "duplicate label name \"%.*s\"", len,
                              ls[i].name.p ? ls[i].name.p : "");
        }
    }
    return 0;
}

int labels_cmp(const struct label *a, size_t na, const struct label *b, size_t nb)
{
    size_t n = na < nb ? na : nb;
    for (size_t i = 0; i < n; i++) {
        int c = cmp_label(&a[i], &b[i]);
        if (c)
            return c < 0 ? -1 : 1;
    }
    return na < nb ? -1 : na > nb;
}

static size_t uvarint_len(uint64_t v)
{
    size_t n = 1;
    for (; v >= 0x80; v >>= 7)
        n++;
    return n;
}

static char *put_str(char *p, struct vg_str s)
{
    uint64_t v = s.len;
    for (; v >= 0x80; v >>= 7)
        *p++ = (char)(v | 0x80);
    *p++ = (char)v;
    if (s.len)
        memcpy(p, s.p, s.len);
    return p + s.len;
}

/* One reservation, then plain stores: this runs for every series of every append. */
void labels_encode(const struct label *ls, size_t n, struct vg_buf *out)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += uvarint_len(ls[i].name.len) + ls[i].name.len + uvarint_len(ls[i].value.len) +
                 ls[i].value.len;
    if (!vg_buf_reserve(out, total))
        return; /* out is marked failed */
    char *p = out->p + out->len;
    for (size_t i = 0; i < n; i++) {
        p = put_str(p, ls[i].name);
        p = put_str(p, ls[i].value);
    }
    out->len += total;
    out->p[out->len] = '\0';
}

bool labels_get_uvarint(const unsigned char *p, size_t len, size_t *pos, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; *pos < len && shift < 64; shift += 7) {
        unsigned char b = p[(*pos)++];
        if (shift == 63 && b > 1)
            return false;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return b != 0 || shift == 0; /* a zero final group means a longer form */
        }
    }
    return false;
}

static int get_str(const char *buf, size_t len, size_t *pos, struct vg_str *s,
                   const char *what, size_t idx, struct vg_err *err)
{
    size_t start = *pos;
    uint64_t n;
    if (!labels_get_uvarint((const unsigned char *)buf, len, pos, &n))
        return vg_err_set(err, VG_EINVAL, "labels: bad %s length of label %zu at offset %zu",
                          what, idx, start);
    if (n > len - *pos)
        return vg_err_set(err, VG_EINVAL,
                          "labels: %s of label %zu at offset %zu: length %llu past end (%zu)",
                          what, idx, start, (unsigned long long)n, len);
    s->p = buf + *pos;
    s->len = (size_t)n;
    *pos += (size_t)n;
    return 0;
}

int labels_decode(const char *buf, size_t len, struct label *out, size_t max, struct vg_err *err)
{
    size_t pos = 0, n = 0;
    while (pos < len) {
        struct label l;
        size_t start = pos;
        int rc = get_str(buf, len, &pos, &l.name, "name", n, err);
        if (!rc)
            rc = get_str(buf, len, &pos, &l.value, "value", n, err);
        if (rc)
            return rc;
        if (n > 0 && vg_str_cmp(out[n - 1].name, l.name) >= 0)
            return vg_err_set(err, VG_EINVAL,
                              "labels: label %zu at offset %zu is not after its predecessor "
                              "(names must be sorted and unique)", n, start);
        if (n == max)
            return vg_err_set(err, VG_ETOOLARGE, "labels: more than %zu labels", max);
        out[n++] = l;
    }
    if (n > (size_t)0x7fffffff)
        return vg_err_set(err, VG_ETOOLARGE, "labels: too many labels");
    return (int)n;
}

/* ---- hash ---- */

#define H_MUL 0x9e3779b97f4a7c15ULL
#define H_MUL2 0xff51afd7ed558ccdULL

static uint64_t h_word(uint64_t h, uint64_t w)
{
    w *= H_MUL2;
    w ^= w >> 29;
    return (h ^ w) * H_MUL + 0x632be59bd9b4e019ULL;
}

static uint64_t h_bytes(uint64_t h, const char *p, size_t n)
{
    const unsigned char *s = (const unsigned char *)p;
    while (n >= 8) {
        uint64_t w = 0;
        for (int i = 7; i >= 0; i--)
            w = (w << 8) | s[i];
        h = h_word(h, w);
        s += 8;
        n -= 8;
    }
    if (n) {
        uint64_t w = 0;
        for (size_t i = n; i-- > 0;)
            w = (w << 8) | s[i];
        h = h_word(h, w | (uint64_t)n << 59); /* tail length keeps "a" != "a\0" */
    }
    return h;
}

uint64_t labels_hash(const struct label *ls, size_t n)
{
    uint64_t h = 0x243f6a8885a308d3ULL;
    for (size_t i = 0; i < n; i++) {
        h = h_word(h, ls[i].name.len);
        h = h_bytes(h, ls[i].name.p, ls[i].name.len);
        h = h_word(h, ls[i].value.len);
        h = h_bytes(h, ls[i].value.p, ls[i].value.len);
    }
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

struct vg_str labels_get(const struct label *ls, size_t n, const char *name)
{
    struct vg_str key = vg_str_c(name);
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = vg_str_cmp(ls[mid].name, key);
        if (c == 0)
            return ls[mid].value;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (struct vg_str){ NULL, 0 };
}
