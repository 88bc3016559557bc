/* vg_alloc: see vg_alloc.h. Blocks are plain malloc blocks, without a header of our
 * own: the size counted in live_bytes is malloc_usable_size of the block, which glibc
 * reads from its own chunk header, so counting costs no memory. (A 16-byte size header
 * used to precede every block; with two blocks per TSDB series that was 32 B of the
 * ~1 kB per active series the benchmark allows.) Counts are therefore of usable bytes,
 * a little more than requested, and the same on allocation and on free. */
#include "vg_alloc.h"

#include <malloc.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

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

static void *track(void *p)
{
    if (p)
        atomic_fetch_add_explicit(&live_bytes, malloc_usable_size(p), memory_order_relaxed);
    return p;
}

void *vg_malloc(size_t n)
{
    if (should_fail())
        return NULL;
    return track(malloc(n ? n : 1));
}

/* Through calloc rather than malloc + memset: glibc knows when the memory is fresh from
 * the kernel (always for large blocks, which it maps on their own) and then skips the
 * clearing, so a big table allocated up front costs resident memory only for the pages
 * that are later written. */
void *vg_calloc(size_t nmemb, size_t size)
{
    if (size && nmemb > SIZE_MAX / size)
        return NULL;
    if (should_fail())
        return NULL;
    size_t n = nmemb * size;
    return track(calloc(1, n ? n : 1));
}

void *vg_realloc(void *p, size_t n)
{
    if (!p)
        return vg_malloc(n);
    if (should_fail())
        return NULL;
    size_t old = malloc_usable_size(p);
    void *np = realloc(p, n ? n : 1);
    if (!np)
        return NULL;
    size_t now = malloc_usable_size(np);
    if (now >= old)
        atomic_fetch_add_explicit(&live_bytes, now - old, memory_order_relaxed);
    else
        atomic_fetch_sub_explicit(&live_bytes, old - now, memory_order_relaxed);
    return np;
}

void vg_free(void *p)
{
    if (!p)
        return;
    atomic_fetch_sub_explicit(&live_bytes, malloc_usable_size(p), memory_order_relaxed);
    free(p);
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
