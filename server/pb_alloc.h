/* pb_alloc: a protobuf-c allocator backed by a request arena, so an unpacked message and
 * everything it points to are freed with the arena (never protobuf_c_message_free_unpacked).
 * The arena's size limit bounds what a hostile message can make us allocate. */
#ifndef PB_ALLOC_H
#define PB_ALLOC_H

#include "../storage/base/vg_arena.h"
#include "../storage/base/vg_err.h"

#include <protobuf-c/protobuf-c.h>
#include <stdint.h>

/* Fills *out so protobuf-c allocates from a. */
void pb_alloc_from_arena(struct vg_arena *a, ProtobufCAllocator *out);

/* Deepest message nesting pb_check_depth accepts (the top-level message is depth 1);
 * 100 is also protobuf's own default recursion limit. */
#define PB_MAX_DEPTH 100

/* protobuf_c_message_unpack recurses once per nested message with no limit of its own:
 * an OTLP AnyValue nested 200,000 times (a 1.6 MB body) overflows the stack. Call this on
 * a body before unpacking it as message d: it walks the wire format, following only
 * length-delimited fields that d declares as messages, and returns 0, or VG_EINVAL with
 * err naming the byte offset of the first message deeper than max_depth. Malformed bytes
 * are not reported here (unpack reports them). Allocates nothing; thread-safe. */
int pb_check_depth(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                   unsigned max_depth, struct vg_err *err);

#endif
