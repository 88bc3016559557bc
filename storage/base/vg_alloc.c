/* vg_alloc: see vg_alloc.h. The header keeps 16 bytes so returned pointers stay aligned
 * for any type, as malloc's are. */
#include "vg_alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define HDR 16

static atomic_size_t live_bytes;
static atomic_uint_fast64_t fail_countdown; /* 0 = off */

static int should_fail(void)
{
    uint_fast64_t n = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    if (n == 0)
        return 0;
    if (n == 1)
        return 1; /* stays at 1: every later allocation fails too */
    atomic_fetch_sub_explicit(&fail_countdown, 1, memory_order_relaxed);
    return 0;
}

static void *track(unsigned char *p, size_t n)
{
    if (!p)
        return NULL;
    memcpy(p, &n, sizeof n);
    atomic_fetch_add_explicit(&live_bytes, n, memory_order_relaxed);
    return p + HDR;
}

void *vg_malloc(size_t n)
{
    if (should_fail() || n > SIZE_MAX - HDR)
        return NULL;
    return track(malloc(n + HDR), n);
}

/* Through calloc rather than malloc + memset: glibc knows when the memory is fresh from
 * the kernel (always for large blocks, which it maps on their own) and then skips the
 * clearing, so a big table allocated up front costs resident memory only for the pages
 * that are later written. */
void *vg_calloc(size_t nmemb, size_t size)
{
    if (size && nmemb > SIZE_MAX / size)
        return NULL;
    size_t n = nmemb * size;
    if (should_fail() || n > SIZE_MAX - HDR)
        return NULL;
    return track(calloc(1, n + HDR), n);
}

void *vg_realloc(void *p, size_t n)
{
    if (!p)
        return vg_malloc(n);
    if (should_fail() || n > SIZE_MAX - HDR)
        return NULL;
    unsigned char *base = (unsigned char *)p - HDR;
    size_t old;
    memcpy(&old, base, sizeof old);
    unsigned char *nb = realloc(base, n + HDR);
    if (!nb)
        return NULL;
    memcpy(nb, &n, sizeof n);
    if (n >= old)
        atomic_fetch_add_explicit(&live_bytes, n - old, memory_order_relaxed);
    else
        atomic_fetch_sub_explicit(&live_bytes, old - n, memory_order_relaxed);
    return nb + HDR;
}

void vg_free(void *p)
{
    if (!p)
        return;
    unsigned char *base = (unsigned char *)p - HDR;
    size_t n;
    memcpy(&n, base, sizeof n);
    atomic_fetch_sub_explicit(&live_bytes, n, memory_order_relaxed);
    free(base);
}

char *vg_strndup(const char *s, size_t n)
{
    char *d = vg_malloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *vg_strdup(const char *s)
{
    return vg_strndup(s, strlen(s));
}

size_t vg_alloc_live_bytes(void)
{
    return atomic_load_explicit(&live_bytes, memory_order_relaxed);
}

void vg_alloc_fail_after(uint64_t n)
{
    atomic_store_explicit(&fail_countdown, n, memory_order_relaxed);
}
