/* vg_sort: LSD radix sort of (128-bit key, index) records; see vg_sort.h. One counting
 * pass over the input fills the histograms of all 16 bytes at once, then each byte that
 * is not the same in every key costs one scatter pass, least significant byte first. */
#include "vg_sort.h"

#include "vg_alloc.h"

static const unsigned BYTES = 16;
static const size_t BINS = 257; /* count[b + 1] for byte b, so a prefix sum gives starts */

static unsigned key_byte(const struct vg_sort_key *k, unsigned pass)
{
    uint64_t w = pass < 8 ? k->lo : k->hi;
    return (unsigned)(w >> (pass % 8 * 8)) & 0xff;
}

struct vg_sort_key *vg_sort_keys(struct vg_sort_key *v, struct vg_sort_key *tmp, size_t n)
{
    if (n < 2)
        return v;
    size_t *count = vg_calloc(BYTES * BINS, sizeof *count);
    if (!count)
        return NULL;
    for (size_t i = 0; i < n; i++)
        for (unsigned pass = 0; pass < BYTES; pass++)
            count[pass * BINS + key_byte(&v[i], pass) + 1]++;
    for (unsigned pass = 0; pass < BYTES; pass++) {
        size_t *c = count + pass * BINS;
        if (c[key_byte(&v[0], pass) + 1] == n)
            continue; /* every key has the same byte here */
        for (unsigned b = 0; b < 256; b++)
            c[b + 1] += c[b];
        for (size_t i = 0; i < n; i++)
            tmp[c[key_byte(&v[i], pass)]++] = v[i];
        struct vg_sort_key *t = v;
        v = tmp;
        tmp = t;
    }
    vg_free(count);
    return v;
}
