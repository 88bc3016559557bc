/* pb_wire: protobuf's wire format read in place, one field at a time: what the decoders
 * that skip protobuf-c's unpacking share (remote write, OTLP traces) and pb_check_depth's
 * walk. Static inline: it runs for every field of every message on the ingest paths.
 *
 * What is refused (pb_next_field returns false), as protobuf-c and Go's decoder refuse
 * it: a varint longer than its limit (10 bytes for values, 5 for tags and lengths) or a
 * 10th byte with bits past 2^64; field number 0 or above 2^29 - 1; a length past the end
 * of the message or above 2^32 - 1; wire types 3 and 4 (groups), 6 and 7. Fixed-width
 * values are little-endian on the wire whatever the host. Nothing allocates; a reader
 * belongs to one thread. */
#ifndef PB_WIRE_H
#define PB_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum { PB_WT_VARINT = 0, PB_WT_I64 = 1, PB_WT_LEN = 2, PB_WT_I32 = 5 };

/* The bytes of a message not read yet. */
struct pb_rd {
    const uint8_t *p, *end;
};

/* One field: number, wire type, and its value (varints and fixed-width values in v, the
 * payload of a length-delimited one in sub). */
struct pb_field {
    uint32_t num;
    unsigned wt;
    uint64_t v;
    struct pb_rd sub;
};

/* A varint of at most maxlen bytes (10 reads any 64-bit value). */
static inline bool pb_get_varint(struct pb_rd *r, uint64_t *out, unsigned maxlen)
{
    const uint8_t *p = r->p;
    if (p < r->end && *p < 0x80) {
        *out = *p;
        r->p = p + 1;
        return true;
    }
    uint64_t v = 0;
    for (unsigned i = 0; i < maxlen && p < r->end; i++) {
        uint8_t b = *p++;
        if (i == 9 && (b & 0x7e))
            return false; /* bits past 2^64 */
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *out = v;
            r->p = p;
            return true;
        }
    }
    return false;
}

/* Reads the next field of r into f and moves past it; false when it is malformed (see
 * the top). Unknown field numbers are read like known ones, so callers skip them. */
static inline __attribute__((always_inline)) bool pb_next_field(struct pb_rd *r,
                                                                struct pb_field *f)
{
    uint64_t key;
    if (!pb_get_varint(r, &key, 5) || key >> 3 == 0 || key >> 3 >= (1u << 29))
        return false;
    f->num = (uint32_t)(key >> 3);
    f->wt = (unsigned)(key & 7);
    switch (f->wt) {
    case PB_WT_VARINT:
        return pb_get_varint(r, &f->v, 10);
    case PB_WT_I64:
    case PB_WT_I32: {
        size_t w = f->wt == PB_WT_I64 ? 8 : 4;
        if ((size_t)(r->end - r->p) < w)
            return false;
        f->v = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        memcpy(&f->v, r->p, w);
#else
        for (size_t i = w; i-- > 0;)
            f->v = f->v << 8 | r->p[i];
#endif
        r->p += w;
        return true;
    }
    case PB_WT_LEN: {
        uint64_t n;
        if (!pb_get_varint(r, &n, 5) || n > UINT32_MAX || n > (uint64_t)(r->end - r->p))
            return false;
        f->sub.p = r->p;
        f->sub.end = r->p + n;
        r->p += n;
        return true;
    }
    default:
        return false;
    }
}

#endif
