/* vg_arena: a bump allocator for per-request memory.
 *
 * Decoded protobuf messages, parsed labels and JSON pieces of one request come from its
 * arena and are released together when the response completes, so error paths cannot
 * leak. Blocks come from vg_malloc. Not thread-safe: one request, one thread at a time.
 * An arena can also cap its total size (vg_arena_set_limit): allocations past the cap
 * fail, which turns a decompression bomb or a huge message into a clean error. */
#ifndef VG_ARENA_H
#define VG_ARENA_H

#include <stddef.h>

struct vg_arena;

struct vg_arena *vg_arena_new(size_t block_size);
void vg_arena_free(struct vg_arena *a); /* accepts NULL; frees every allocation */
void vg_arena_reset(struct vg_arena *a); /* frees all but the first block for reuse */
void vg_arena_set_limit(struct vg_arena *a, size_t max_bytes); /* 0 = no limit */
size_t vg_arena_get_limit(const struct vg_arena *a); /* to restore a limit set by others */

/* 16-byte aligned memory, or NULL when out of memory or over the limit. */
void *vg_arena_alloc(struct vg_arena *a, size_t n);
void *vg_arena_calloc(struct vg_arena *a, size_t n);
char *vg_arena_strndup(struct vg_arena *a, const char *s, size_t n);
size_t vg_arena_used(const struct vg_arena *a);

#endif
