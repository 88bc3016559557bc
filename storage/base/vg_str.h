/* vg_str: a borrowed byte string with its length. Hot paths never strlen network bytes;
 * a vg_str does not own its bytes and is not NUL-terminated in general. */
#ifndef VG_STR_H
#define VG_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

struct vg_str {
    const char *p;
    size_t len;
};

#define VG_STR(lit) ((struct vg_str){ (lit), sizeof(lit) - 1 })

static inline struct vg_str vg_str_c(const char *s)
{
    return (struct vg_str){ s, s ? strlen(s) : 0 };
}

static inline bool vg_str_eq(struct vg_str a, struct vg_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static inline bool vg_str_eq_c(struct vg_str a, const char *c)
{
    return vg_str_eq(a, vg_str_c(c));
}

/* Byte-wise comparison, shorter first on a common prefix (like memcmp on sorted keys). */
static inline int vg_str_cmp(struct vg_str a, struct vg_str b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.p, b.p, n) : 0;
    if (c)
        return c;
    return a.len < b.len ? -1 : a.len > b.len;
}

#endif
