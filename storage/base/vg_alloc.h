/* vg_alloc: the heap of Vigil.
 *
 * Every heap allocation goes through these so that live bytes are counted (exported in
 * /metrics and used by the overload limit) and so tests and fuzzers can make the Nth
 * allocation fail (vg_alloc_fail_after). Blocks are plain malloc blocks (counted by
 * malloc_usable_size, no header of our own). Thread-safe: counters are atomics.
 * vg_free(NULL) is a no-op. */
#ifndef VG_ALLOC_H
#define VG_ALLOC_H

#include <stddef.h>
#include <stdint.h>

void *vg_malloc(size_t n);
void *vg_calloc(size_t nmemb, size_t size);
void *vg_realloc(void *p, size_t n);
void vg_free(void *p);
char *vg_strdup(const char *s);
char *vg_strndup(const char *s, size_t n);

/* Usable bytes of the blocks currently allocated through vg_malloc and friends. */
size_t vg_alloc_live_bytes(void);

/* Test hook: the n-th allocation from now (1 = the next) and every later one fails,
 * until vg_alloc_fail_after(0) switches failure injection off. */
void vg_alloc_fail_after(uint64_t n);

#endif
