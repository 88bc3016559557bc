/* span: the span model of the span store and its compact, versioned binary encoding.
 *
 * The model is close to OTLP's Span plus the resource and scope it came with (service
 * name pulled out because every index uses it). Strings are vg_str (borrowed, with
 * length); attribute values are typed; arrays and key/value lists are opaque blobs
 * serialised by whoever builds the span (the store only keeps them and hands them back).
 *
 * Encoding (version 1), all integers little-endian or LEB128 "uvarint"; "svarint" is a
 * zigzag uvarint; "str" is uvarint length then bytes; "attrs" is uvarint count then per
 * attribute: str key, one type byte (enum span_val_type), then the value: str for
 * STRING/BYTES/ARRAY/MAP, svarint for INT, 8 bytes IEEE-754 LE for DOUBLE, one byte 0/1
 * for BOOL.
 *
 *   u8  version (1)
 *   16  trace id, 8 span id, 8 parent span id (all zero = no parent)
 *   uvarint flags (W3C trace flags and OTLP span flags)
 *   u8  kind, u8 status code
 *   svarint start_ns, uvarint (end_ns - start_ns)
 *   str name, str status message, str trace state, str service name
 *   str scope name, str scope version
 *   attrs resource attributes, uvarint dropped resource attributes
 *   attrs scope attributes
 *   attrs span attributes, uvarint dropped attributes
 *   uvarint events: per event svarint (time_ns - start_ns), str name, attrs, uvarint dropped
 *   uvarint dropped events
 *   uvarint links: per link 16 trace id, 8 span id, str trace state, uvarint flags, attrs,
 *                  uvarint dropped
 *   uvarint dropped links
 *   (nothing after; trailing bytes are an error)
 *
 * The decoder trusts nothing: every length is checked against what remains, counts are
 * bounded by the bytes left before anything is allocated, enum bytes are range-checked,
 * times must not overflow, and any failure is VG_EINVAL naming the field and offset.
 *
 * Thread safety: all functions are pure over their arguments. */
#ifndef SPAN_H
#define SPAN_H

#include "../base/vg_arena.h"
#include "../base/vg_buf.h"
#include "../base/vg_err.h"
#include "../base/vg_str.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define SPAN_ENCODING_VERSION 1
#define SPAN_TRACE_ID_LEN 16
#define SPAN_ID_LEN 8

enum span_kind { /* OTLP's SpanKind numbers */
    SPAN_KIND_UNSPECIFIED = 0,
    SPAN_KIND_INTERNAL = 1,
    SPAN_KIND_SERVER = 2,
    SPAN_KIND_CLIENT = 3,
    SPAN_KIND_PRODUCER = 4,
    SPAN_KIND_CONSUMER = 5,
};
#define SPAN_KIND_MAX SPAN_KIND_CONSUMER

enum span_status { /* OTLP's Status.StatusCode numbers */
    SPAN_STATUS_UNSET = 0,
    SPAN_STATUS_OK = 1,
    SPAN_STATUS_ERROR = 2,
};
#define SPAN_STATUS_MAX SPAN_STATUS_ERROR

enum span_val_type {
    SPAN_VAL_STRING = 1,
    SPAN_VAL_INT = 2,
    SPAN_VAL_DOUBLE = 3,
    SPAN_VAL_BOOL = 4,
    SPAN_VAL_BYTES = 5,
    SPAN_VAL_ARRAY = 6, /* opaque blob serialised by the producer */
    SPAN_VAL_MAP = 7,   /* opaque blob serialised by the producer */
};
#define SPAN_VAL_MAX SPAN_VAL_MAP

struct span_attr {
    struct vg_str key;
    enum span_val_type type;
    union {
        struct vg_str s; /* STRING, BYTES, ARRAY, MAP */
        int64_t i;
        double d;
        bool b;
    } v;
};

struct span_event {
    int64_t time_ns;
    struct vg_str name;
    const struct span_attr *attrs;
    size_t nattrs;
    uint32_t dropped_attrs;
};

struct span_link {
    uint8_t trace_id[SPAN_TRACE_ID_LEN];
    uint8_t span_id[SPAN_ID_LEN];
    struct vg_str trace_state;
    uint32_t flags;
    const struct span_attr *attrs;
    size_t nattrs;
    uint32_t dropped_attrs;
};

struct span {
    uint8_t trace_id[SPAN_TRACE_ID_LEN];
    uint8_t span_id[SPAN_ID_LEN];
    uint8_t parent_span_id[SPAN_ID_LEN]; /* all zero for a root span */
    uint32_t flags;
    enum span_kind kind;
    enum span_status status;
    uint32_t dropped_resource_attrs; /* 32-bit fields grouped to keep padding out */
    int64_t start_ns, end_ns; /* nanoseconds since the epoch */
    struct vg_str name, status_message, trace_state;
    struct vg_str service; /* resource attribute service.name */
    struct vg_str scope_name, scope_version;
    const struct span_attr *resource_attrs;
    size_t nresource_attrs;
    const struct span_attr *scope_attrs;
    size_t nscope_attrs;
    const struct span_attr *attrs;
    size_t nattrs;
    const struct span_event *events;
    size_t nevents;
    const struct span_link *links;
    size_t nlinks;
    uint32_t dropped_attrs, dropped_events, dropped_links;
};

/* True when the parent span id is all zero. */
bool span_is_root(const struct span *s);

/* The checks the store needs before keeping a span: non-zero trace and span ids,
 * 0 < start_ns <= end_ns, kind and status and attribute types in range. 0 or VG_EINVAL
 * naming the field. (Size limits are the ingest edge's job.) */
int span_validate(const struct span *s, struct vg_err *err);

/* The enum checks span_encode makes: kind, status and every attribute type in range.
 * 0 or VG_EINVAL naming the field. */
int span_check_enums(const struct span *s, struct vg_err *err);

/* The exact length of s's version-1 encoding, in two parts: its shared part (service
 * name through scope attributes, see span_encode_shared) and all the rest; 0 when the
 * part has an enum out of range (span_check_enums then tells which). */
size_t span_encoded_shared_size(const struct span *s);
size_t span_encoded_rest_size(const struct span *s);

/* Appends the version-1 encoding of s to out. Returns 0, VG_EINVAL when s has an enum
 * out of range, or VG_ENOMEM (out marked failed). */
int span_encode(const struct span *s, struct vg_buf *out, struct vg_err *err);

/* span_encode, also telling where the span's shared part lies in what it appended:
 * [*shared_off, *shared_off + *shared_len) relative to the encoding's first byte, the
 * fields from the service name through the scope attributes (what every span of one
 * ResourceSpans and scope repeats). Same returns as span_encode. */
int span_encode_shared(const struct span *s, struct vg_buf *out, size_t *shared_off,
                       size_t *shared_len, struct vg_err *err);

/* Decodes buf into *out. Strings in out borrow from buf (keep buf alive and unchanged);
 * the attribute, event and link arrays come from arena. Returns 0, VG_EINVAL naming the
 * field and byte offset, or VG_ENOMEM when the arena is exhausted. */
int span_decode(const void *buf, size_t len, struct vg_arena *arena, struct span *out,
                struct vg_err *err);

/* Reads only the fixed header of an encoding: ids, kind, status, start and end. Cheaper
 * than span_decode when a caller needs no strings. 0 or VG_EINVAL. */
int span_decode_header(const void *buf, size_t len, struct span *out, struct vg_err *err);

/* Appends the text form of an attribute value as the indexes and filters compare it:
 * strings as is, ints in decimal, doubles in shortest round-trip form without exponent
 * (as vg_buf_json_float), bools "true"/"false". Returns false (appending nothing) for
 * BYTES, ARRAY and MAP, which have no text form and are never indexed or matched. */
bool span_attr_text(const struct span_attr *a, struct vg_buf *out);

/* A bounds-checked reader over untrusted bytes, shared with the store's own records.
 * After the first failure ok is false and every read returns zero/empty. */
struct span_rd {
    const uint8_t *p;
    size_t len, off;
    bool ok;
    const char *what; /* the field being read when it failed */
};
void span_rd_init(struct span_rd *r, const void *buf, size_t len);
uint64_t span_rd_uvarint(struct span_rd *r, const char *what);
int64_t span_rd_svarint(struct span_rd *r, const char *what);
uint8_t span_rd_u8(struct span_rd *r, const char *what);
struct vg_str span_rd_str(struct span_rd *r, const char *what);
const uint8_t *span_rd_bytes(struct span_rd *r, size_t n, const char *what);
/* Appends zigzag(v) as a uvarint: the writer side of span_rd_svarint. */
void span_put_svarint(struct vg_buf *b, int64_t v);
void span_put_str(struct vg_buf *b, struct vg_str s);

/* Unchecked writers for hot paths (the store builds ~50 keys per span): the caller
 * reserves an upper bound with span_w_begin, writes through the returned pointer, and
 * commits with span_w_end. span_w_begin returns NULL (b marked failed) when out of
 * memory. Each span_w_* returns the position after what it wrote. */
#define SPAN_W_VARINT_MAX 10
static inline uint8_t *span_w_begin(struct vg_buf *b, size_t max)
{
    return vg_buf_reserve(b, max) ? (uint8_t *)b->p + b->len : NULL;
}
static inline void span_w_end(struct vg_buf *b, const uint8_t *end)
{
    b->len = (size_t)((const char *)end - b->p);
    b->p[b->len] = '\0';
}
static inline uint8_t *span_w_uvarint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}
/* How many bytes span_w_uvarint writes for v. */
static inline size_t span_w_uvarint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}
static inline uint8_t *span_w_svarint(uint8_t *p, int64_t v)
{
    return span_w_uvarint(p, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}
static inline uint8_t *span_w_bytes(uint8_t *p, const void *src, size_t n)
{
    if (n)
        memcpy(p, src, n);
    return p + n;
}
static inline uint8_t *span_w_str(uint8_t *p, struct vg_str s)
{
    return span_w_bytes(span_w_uvarint(p, s.len), s.p, s.len);
}

/* Chunks: the span store keeps the spans of one trace from one write as one value.
 *
 *   version 2 (stores before version 3; still read, and span_chunk_append writes it):
 *     u8 2, then per span: uvarint length, that span's version-1 encoding (to the end of
 *     the value; at least one span).
 *   version 3 (stores before version 4; still read; span_chunk_w_init_v3 writes it for
 *     tests): u8 3, then per span one entry (at least one):
 *     uvarint ref: 0 = the entry carries its whole encoding; k >= 1 = the entry's shared
 *                  part (span_encode_shared: service, scope, resource and scope
 *                  attributes) is that of the k-th entry carrying one (ref 0) in the
 *                  chunk, one of the first SPAN_CHUNK_MAX_SHARED
 *     uvarint off: where the shared part starts in the span's version-1 encoding
 *     uvarint shared length (only when ref is 0)
 *     uvarint length n, then n bytes: ref 0, the version-1 encoding (its shared part at
 *                  [off, off + shared length)); ref k, the encoding without its shared
 *                  part, which goes back in at off.
 *   The spans of one resource in a trace (a service's spans) store its attributes once:
 *   a third of a chunk's bytes, and of the CPU LevelDB spends per byte (log checksum,
 *   memtable copy, snappy, table checksum), in spanstore_bench.
 *   version 4 (written now): u8 4, then per span one entry (at least one):
 *     uvarint tag: 0 = verbatim: uvarint n, then n bytes, the version-1 encoding (what
 *                  the writer falls back to for an encoding it cannot pack exactly, or
 *                  one longer than SPAN_CHUNK_V4_MAX_SPAN);
 *                  1 = packed, carrying its shared part;
 *                  k + 2 = packed, its shared part that of the k-th (from 0) packed
 *                  entry carrying one, one of the first SPAN_CHUNK_MAX_SHARED.
 *     packed entries: uvarint n, the length of the version-1 encoding the entry
 *     rebuilds (1 <= n <= SPAN_CHUNK_V4_MAX_SPAN; the rebuilt bytes must be exactly n),
 *     then the version-1 fields in their order, with these differences:
 *       the version byte is left out (it is 1);
 *       u8 id flags: bit 0 = the trace id is the previous packed span's (left out),
 *                    bit 1 = the parent span id is all zero (left out),
 *                    bit 2 = the parent span id is the span id of the j-th (from 0)
 *                    packed span of the chunk, one of the first SPAN_CHUNK_MAX_IDS;
 *                    not bits 1 and 2 together; other bits 0;
 *       16 trace id (unless bit 0), 8 span id, then for bit 2 uvarint j, for neither
 *                    bit 1 nor 2 the 8-byte parent span id;
 *       start_ns is svarint (start_ns - the previous packed span's start_ns, 0 for the
 *                  first), wrapping modulo 2^64;
 *       the shared part (service name through scope attributes) is, for tag 1,
 *                  packed like the rest (its strings as below); for tag k + 2 nothing:
 *                  it is the k-th carrier's, unpacked again (its literals then join
 *                  the string table no second time);
 *       every other "str" (name, status message, trace state, attribute keys, STRING,
 *                  BYTES, ARRAY and MAP values, event names, link trace states) is a
 *                  uvarint v: v & 1 = 1, string (v >> 1) of the chunk's string table;
 *                  v & 1 = 0, a literal of v >> 2 bytes following, appended to the
 *                  table when v & 2 (the table holds at most SPAN_CHUNK_MAX_STRINGS);
 *       every other uvarint, svarint, enum byte, double, bool and id keeps its
 *                  version-1 bytes.
 *     The string table, the span ids and the previous span's trace id and start belong
 *     to the chunk and grow in entry order (verbatim entries change none). A trace's
 *     spans repeat attribute keys, methods, routes, statuses, names, resource
 *     attributes across services, their trace id and their parents' ids: stored once,
 *     spanstore_bench's chunks shrink from 323 to 153 bytes a span (snappy: 65 to 51),
 *     so LevelDB logs, copies, checksums and compresses half the bytes. Packing costs
 *     about what LevelDB then saves (callgrind, whole write path); unpacking costs
 *     some 3,000 instructions a span where version 3 copied (queries pay it).
 * A stored value is either a chunk or a single version-1 span (what earlier versions
 * wrote); the first byte tells them apart. span_chunk_* walk all four and hand out
 * version-1 encodings, byte for byte what span_chunk_add was given. The store writes
 * version 4 with span_pack_add (span_pack.h), which packs from struct span the same
 * bytes span_encode_shared + span_chunk_add would, without the encoding between. */
#define SPAN_CHUNK_VERSION 2
#define SPAN_CHUNK_VERSION_3 3
#define SPAN_CHUNK_VERSION_4 4
#define SPAN_CHUNK_MAX_SHARED 16
#define SPAN_CHUNK_MAX_STRINGS 512       /* strings in one version-4 chunk's table */
#define SPAN_CHUNK_V4_MAX_SPAN (4u << 20) /* longest span a version-4 entry packs */
#define SPAN_CHUNK_MAX_IDS 256           /* span ids a version-4 parent may refer to */
#define SPAN_CHUNK_ITER_CACHE (64u << 10) /* unpacked shared parts an iterator keeps */
/* Appends one span's version-1 encoding (enc, len) to a version-2 chunk in out, starting
 * the chunk when out is empty. Marks out failed when out of memory. */
void span_chunk_append(struct vg_buf *out, const void *enc, size_t len);

struct span_chunk_part {
    size_t off, len; /* bytes of the chunk */
};

/* A version-4 (or, from span_chunk_w_init_v3, version-3) chunk being written into out
 * (which must start empty). Holds no heap: nothing to free. About 20 KiB; the writer's
 * string index is an open-addressed hash of SPAN_CHUNK_W_SLOTS slots. Packs
 * what the version-1 encoding allows, otherwise stores it verbatim. */
#define SPAN_CHUNK_W_SLOTS 1024 /* a power of two above SPAN_CHUNK_MAX_STRINGS */
#define SPAN_CHUNK_W_COPY 4096  /* bytes of shared parts the writer keeps to compare */
/* Where a span's shared part lives (span_pack_add): spans with equal fields here have
 * equal shared parts while that memory stays unchanged. No padding, so memcmp
 * compares exactly the fields. */
struct span_chunk_w_src {
    const struct span_attr *res, *scope;
    size_t nres, nscope;
    struct vg_str service, scope_name, scope_version;
    uint64_t dropped; /* dropped resource attributes; UINT64_MAX: not set */
};
struct span_chunk_w {
    struct vg_buf *out;
    struct span_chunk_part shared[SPAN_CHUNK_MAX_SHARED]; /* in out (v4: packed) */
    size_t shared_raw[SPAN_CHUNK_MAX_SHARED];             /* v4: unpacked lengths */
    size_t shared_copy[SPAN_CHUNK_MAX_SHARED]; /* v4: where in copy, SIZE_MAX if not */
    struct span_chunk_w_src src[SPAN_CHUNK_MAX_SHARED]; /* v4: span_pack_add's, if set */
    size_t nshared;
    uint8_t version;
    bool have_prev;                       /* a packed span was written */
    uint8_t prev_trace[SPAN_TRACE_ID_LEN]; /* its trace id and start */
    int64_t prev_start;
    uint32_t nstr;                           /* strings in the table */
    uint32_t str_off[SPAN_CHUNK_MAX_STRINGS]; /* each one's bytes in out */
    uint32_t str_len[SPAN_CHUNK_MAX_STRINGS];
    uint64_t str_a[SPAN_CHUNK_MAX_STRINGS]; /* each one's first and last 8 bytes */
    uint64_t str_b[SPAN_CHUNK_MAX_STRINGS];
    uint16_t slot[SPAN_CHUNK_W_SLOTS]; /* 0 empty, else table index + 1 */
    uint32_t nids;                       /* packed spans with their id in id_off */
    uint32_t id_off[SPAN_CHUNK_MAX_IDS]; /* each one's span id in out */
    size_t ncopy;                        /* v4: the carriers' unpacked shared parts, */
    uint8_t copy[SPAN_CHUNK_W_COPY];     /* compared with each new span's */
};
/* Starts a version-4 chunk. */
void span_chunk_w_init(struct span_chunk_w *w, struct vg_buf *out);
/* Starts a version-3 chunk, as stores before version 4 wrote (tests of old data). */
void span_chunk_w_init_v3(struct span_chunk_w *w, struct vg_buf *out);
/* Appends one span's version-1 encoding (enc, len) whose shared part is at
 * [shared_off, shared_off + shared_len) (from span_encode_shared), storing the shared
 * part only when no earlier span of the chunk has the same. Any bytes are accepted: an
 * encoding that cannot be packed exactly is stored verbatim. Marks out failed when out
 * of memory. */
void span_chunk_add(struct span_chunk_w *w, const void *enc, size_t len, size_t shared_off,
                    size_t shared_len);

/* The pieces of a version-4 entry, shared by span_chunk_add and span_pack_add (which
 * packs from struct span). Each writes unchecked at p (the caller reserved room in
 * w->out) and returns the position after what it wrote.
 * span_w_shared, span_w_tail: s's shared part and the fields after it, in version-1
 * form (w NULL) or with strings packed into w's string table (at most
 * SPAN_W_VARINT_MAX more bytes than a str each).
 * span_chunk_w_str: one string (s, n) packed, remembered while the table has room;
 * s may be read up to avail >= n bytes (a few past n make hashing cheaper).
 * span_chunk_w_ids: the id flags and ids (at most SPAN_CHUNK_W_IDS_MAX bytes); *id_at
 * is where the span id lands in w->out.
 * span_chunk_w_start: the uvarint (zigzag) that stores start_ns.
 * span_chunk_w_find_shared: the carrier whose shared part is the version-1 bytes
 * (raw, n), or -1.
 * span_chunk_w_packed: records a packed entry once written: a new carrier (when
 * carrier, its packed shared part at shared and its version-1 bytes raw_len at raw),
 * its span id, trace id and start. */
#define SPAN_CHUNK_W_IDS_MAX (1 + SPAN_TRACE_ID_LEN + 2 * SPAN_ID_LEN)
uint8_t *span_w_shared(uint8_t *p, const struct span *s, struct span_chunk_w *w);
uint8_t *span_w_tail(uint8_t *p, const struct span *s, struct span_chunk_w *w);
uint8_t *span_chunk_w_str(struct span_chunk_w *w, uint8_t *p, const void *s, size_t n,
                          size_t avail);
uint8_t *span_chunk_w_ids(struct span_chunk_w *w, uint8_t *p, const uint8_t *trace,
                          const uint8_t *span_id, const uint8_t *parent, size_t *id_at);
uint64_t span_chunk_w_start(const struct span_chunk_w *w, int64_t start_ns);
int span_chunk_w_find_shared(struct span_chunk_w *w, const void *raw, size_t n);
void span_chunk_w_packed(struct span_chunk_w *w, bool carrier, struct span_chunk_part shared,
                         const void *raw, size_t raw_len, size_t id_at, const uint8_t *trace,
                         int64_t start_ns);

/* Walks a stored value. Release with span_chunk_iter_free (it may hold buffers). */
struct span_chunk_iter {
    struct span_rd r;
    bool single; /* the value is one version-1 span */
    uint8_t version;
    struct span_chunk_part shared[SPAN_CHUNK_MAX_SHARED]; /* in the value */
    size_t nshared;
    struct vg_buf scratch; /* a version-3 or -4 span rebuilt with its shared part */
    struct vg_buf strs;    /* version 4: the string table, struct span_chunk_part each */
    struct vg_buf ids;     /* version 4: packed spans' span ids, a size_t offset each */
    struct vg_buf cache;   /* version 4: carriers' unpacked shared parts */
    size_t shared_cache[SPAN_CHUNK_MAX_SHARED]; /* where in cache, SIZE_MAX if not */
    size_t shared_clen[SPAN_CHUNK_MAX_SHARED];
    bool have_prev;        /* version 4: the previous packed span's trace id and start */
    uint8_t prev_trace[SPAN_TRACE_ID_LEN];
    int64_t prev_start;
};
void span_chunk_iter_init(struct span_chunk_iter *it, const void *buf, size_t len);
void span_chunk_iter_free(struct span_chunk_iter *it);
/* The next span's version-1 encoding in enc and len, valid until the next call (it
 * borrows from buf, or from the iterator for a version-3 or -4 span it rebuilt, at most
 * SPAN_CHUNK_V4_MAX_SPAN bytes): 1, 0 at the end, VG_EINVAL naming the offset and field
 * when a length, a string or shared reference or a field is out of range or a chunk is
 * empty, or VG_ENOMEM. After an error the walk is over (later calls fail again). */
int span_chunk_next(struct span_chunk_iter *it, const void **enc, size_t *len,
                    struct vg_err *err);

#endif
