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

static int read_varint(const uint8_t *p, size_t len, size_t *i, uint64_t *v)
{
    *v = 0;
    for (unsigned shift = 0; shift < 64 && *i < len; shift += 7) {
        uint8_t b = p[(*i)++];
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return 1;
    }
    return 0;
}

/* Returns the offset (from base) of a message nested too deep, or -1. Recursion is
 * bounded by max_depth. */
static long depth_scan(const ProtobufCMessageDescriptor *d, const uint8_t *base,
                       const uint8_t *p, size_t len, unsigned depth, unsigned max_depth)
{
    if (depth > max_depth)
        return (long)(p - base);
    size_t i = 0;
    while (i < len) {
        uint64_t key, n;
        if (!read_varint(p, len, &i, &key))
            return -1;
        switch (key & 7) {
        case 0:
            if (!read_varint(p, len, &i, &n))
                return -1;
            break;
        case 1:
        case 5: {
            size_t w = (key & 7) == 1 ? 8 : 4;
            if (len - i < w)
                return -1;
            i += w;
            break;
        }
        case 2: {
            if (!read_varint(p, len, &i, &n) || n > len - i)
                return -1;
            const ProtobufCFieldDescriptor *f =
                key >> 3 <= UINT32_MAX
                    ? protobuf_c_message_descriptor_get_field(d, (unsigned)(key >> 3))
                    : NULL;
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                long bad = depth_scan(f->descriptor, base, p + i, (size_t)n, depth + 1,
                                      max_depth);
                if (bad >= 0)
                    return bad;
            }
            i += (size_t)n;
            break;
        }
        default:
            return -1; /* groups or garbage: protobuf_c_message_unpack rejects them */
        }
    }
    return -1;
}

int pb_check_depth(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                   unsigned max_depth, struct vg_err *err)
{
    long bad = depth_scan(d, buf, buf, len, 1, max_depth);
    if (bad >= 0)
        return vg_err_set(err, VG_EINVAL,
                          "%s: messages nested deeper than %u levels at byte offset %ld",
                          d->short_name, max_depth, bad);
    return 0;
}
