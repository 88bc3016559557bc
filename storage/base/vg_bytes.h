/* vg_bytes: fixed-width loads from unaligned bytes in a stated byte order.
 *
 * memcpy into a local word is the portable unaligned load (compilers turn it into one
 * mov); the swap happens only on big-endian hosts, so what a caller computes from the
 * loaded word (a hash stored in a key, a mask compared with another load) is the same
 * on every host.
 *
 * Header only; pure and thread-safe. */
#ifndef VG_BYTES_H
#define VG_BYTES_H

#include <stdint.h>
#include <string.h>

/* The 8 bytes at p (any alignment) read as a little-endian 64-bit word. */
static inline uint64_t vg_load_le64(const void *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    return w;
}

#endif
