/* pb_alloc: a protobuf-c allocator backed by a request arena, so an unpacked message and
 * everything it points to are freed with the arena (never protobuf_c_message_free_unpacked).
 * The arena's size limit bounds what a hostile message can make us allocate. */
#ifndef PB_ALLOC_H
#define PB_ALLOC_H

#include "../storage/base/vg_arena.h"

#include <protobuf-c/protobuf-c.h>

/* Fills *out so protobuf-c allocates from a. */
void pb_alloc_from_arena(struct vg_arena *a, ProtobufCAllocator *out);

#endif
