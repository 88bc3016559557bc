/* pb_alloc: see pb_alloc.h. */
#include "pb_alloc.h"

#include "pb_wire.h"

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

/* Returns the offset (from base) of a message nested too deep, or -1 (also for bytes
 * pb_next_field refuses: protobuf_c_message_unpack rejects those). Recursion is bounded
 * by max_depth. */
static long depth_scan(const ProtobufCMessageDescriptor *d, const uint8_t *base,
                       struct pb_rd r, unsigned depth, unsigned max_depth)
{
    if (depth > max_depth)
        return (long)(r.p - base);
    struct pb_field f;
    while (r.p < r.end) {
        if (!pb_next_field(&r, &f))
            return -1;
        if (f.wt != PB_WT_LEN)
            continue;
        const ProtobufCFieldDescriptor *fd = protobuf_c_message_descriptor_get_field(d, f.num);
        if (fd && fd->type == PROTOBUF_C_TYPE_MESSAGE) {
            long bad = depth_scan(fd->descriptor, base, f.sub, depth + 1, max_depth);
            if (bad >= 0)
                return bad;
        }
    }
    return -1;
}

int pb_check_depth(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                   unsigned max_depth, struct vg_err *err)
{
    long bad = depth_scan(d, buf, (struct pb_rd){ buf, buf + len }, 1, max_depth);
    if (bad >= 0)
        return vg_err_set(err, VG_EINVAL,
                          "%s: messages nested deeper than %u levels at byte offset %ld",
                          d->short_name, max_depth, bad);
    return 0;
}
