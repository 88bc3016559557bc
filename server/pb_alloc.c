/* pb_alloc: see pb_alloc.h. */
#include "pb_alloc.h"

static void *arena_alloc(void *data, size_t n)
{
    return vg_arena_alloc(data, n);
}

static void arena_free(void *data, void *p)
{
    (void)data;
    (void)p; /* released with the arena */
}

void pb_alloc_from_arena(struct vg_arena *a, ProtobufCAllocator *out)
{
    out->alloc = arena_alloc;
    out->free = arena_free;
    out->allocator_data = a;
}
