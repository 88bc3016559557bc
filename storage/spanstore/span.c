/* span: see span.h for the model, the exact version-1 byte format and the chunk
 * formats (versions 2, 3 and 4, byte by byte).
 *
 * Invariants: span_encode writes exactly what span_decode reads back (the round trip is
 * exact, doubles bit for bit) and exactly span_encoded_rest_size + _shared_size bytes
 * (asserted); the shared part and the rest are written by the same walkers
 * (span_w_shared, span_w_tail) for span_encode and, strings packed, for span_pack_add.
 * span_decode never reads outside [buf, buf+len), never allocates more than the input
 * could describe (every attribute, event or link needs at least 2, 3 and 28 encoded
 * bytes, so counts are checked against the bytes left first).
 * Chunks: span_chunk_next gives back exactly the bytes span_chunk_add was given, for
 * every version; a version-4 writer that cannot guarantee that for an encoding (a varint
 * longer than needed where it re-encodes one, bytes that are no span, a shared part not
 * where span_encode_shared puts it) stores it verbatim. Reading a version-4 chunk never
 * reads outside the value, writes at most the entry's declared length (at most
 * SPAN_CHUNK_V4_MAX_SPAN) and keeps at most SPAN_CHUNK_MAX_STRINGS table entries and
 * SPAN_CHUNK_MAX_IDS span ids, whatever the bytes. */
#include "span.h"

#include <assert.h>
#include <string.h>

/* Smallest encoded sizes, used to bound counts before allocating. */
#define MIN_ATTR_BYTES 3  /* empty key, type, empty value */
#define MIN_EVENT_BYTES 4 /* time, name, attrs, dropped */
#define MIN_LINK_BYTES 28 /* ids, trace state, flags, attrs, dropped */

bool span_is_root(const struct span *s)
{
    static const uint8_t zero[SPAN_ID_LEN];
    return memcmp(s->parent_span_id, zero, SPAN_ID_LEN) == 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static int check_attrs(const struct span_attr *a, size_t n, const char *where,
                       struct vg_err *err)
{
    for (size_t i = 0; i < n; i++)
        if (a[i].type < SPAN_VAL_STRING || a[i].type > SPAN_VAL_MAX)
            return vg_err_set(err, VG_EINVAL, "%s attribute %zu: value type %d out of range",
                              where, i, (int)a[i].type);
    return 0;
}

/* Every enum byte the encoding stores, so span_encode never writes what span_decode
 * would refuse. */
int span_check_enums(const struct span *s, struct vg_err *err)
{
    if ((unsigned)s->kind > SPAN_KIND_MAX)
        return vg_err_set(err, VG_EINVAL, "kind: %d out of range", (int)s->kind);
    if ((unsigned)s->status > SPAN_STATUS_MAX)
        return vg_err_set(err, VG_EINVAL, "status.code: %d out of range", (int)s->status);
    int rc = check_attrs(s->resource_attrs, s->nresource_attrs, "resource", err);
    if (!rc)
        rc = check_attrs(s->scope_attrs, s->nscope_attrs, "scope", err);
    if (!rc)
        rc = check_attrs(s->attrs, s->nattrs, "span", err);
    for (size_t i = 0; !rc && i < s->nevents; i++)
        rc = check_attrs(s->events[i].attrs, s->events[i].nattrs, "event", err);
    for (size_t i = 0; !rc && i < s->nlinks; i++)
        rc = check_attrs(s->links[i].attrs, s->links[i].nattrs, "link", err);
    return rc;
}

int span_validate(const struct span *s, struct vg_err *err)
{
    if (all_zero(s->trace_id, SPAN_TRACE_ID_LEN))
        return vg_err_set(err, VG_EINVAL, "trace_id: all zero");
    if (all_zero(s->span_id, SPAN_ID_LEN))
        return vg_err_set(err, VG_EINVAL, "span_id: all zero");
    if (s->start_ns <= 0)
        return vg_err_set(err, VG_EINVAL, "start_time: %lld is not after the epoch",
                          (long long)s->start_ns);
    if (s->end_ns < s->start_ns)
        return vg_err_set(err, VG_EINVAL, "end_time: %lld is before start_time %lld",
                          (long long)s->end_ns, (long long)s->start_ns);
    return span_check_enums(s, err);
}

/* ---- writing ---- */

void span_put_svarint(struct vg_buf *b, int64_t v)
{
    vg_buf_put_uvarint(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

void span_put_str(struct vg_buf *b, struct vg_str s)
{
    vg_buf_put_uvarint(b, s.len);
    vg_buf_append(b, s.p, s.len);
}

/* Exact encoded sizes: span_encode reserves once, then writes unchecked (it runs for
 * every stored span; a checked append per field cost more than the copying), and the
 * chunk writer's span_pack_add learns a span's length without encoding it. */
#define STR_SIZE(s) (span_w_uvarint_len((s).len) + (s).len)

static uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static size_t attrs_size(const struct span_attr *a, size_t n, bool *bad)
{
    size_t m = span_w_uvarint_len(n);
    for (size_t i = 0; i < n; i++) {
        m += STR_SIZE(a[i].key) + 1;
        switch (a[i].type) {
        case SPAN_VAL_INT:
            m += span_w_uvarint_len(zigzag(a[i].v.i));
            break;
        case SPAN_VAL_DOUBLE:
            m += 8;
            break;
        case SPAN_VAL_BOOL:
            m += 1;
            break;
        case SPAN_VAL_STRING:
        case SPAN_VAL_BYTES:
        case SPAN_VAL_ARRAY:
        case SPAN_VAL_MAP:
            m += STR_SIZE(a[i].v.s);
            break;
        default:
            *bad = true;
            break;
        }
    }
    return m;
}

size_t span_encoded_shared_size(const struct span *s)
{
    bool bad = false;
    size_t m = STR_SIZE(s->service) + STR_SIZE(s->scope_name) + STR_SIZE(s->scope_version) +
               attrs_size(s->resource_attrs, s->nresource_attrs, &bad) +
               span_w_uvarint_len(s->dropped_resource_attrs) +
               attrs_size(s->scope_attrs, s->nscope_attrs, &bad);
    return bad ? 0 : m;
}

size_t span_encoded_rest_size(const struct span *s)
{
    bool bad = (unsigned)s->kind > SPAN_KIND_MAX || (unsigned)s->status > SPAN_STATUS_MAX;
    size_t m = 1 + SPAN_TRACE_ID_LEN + 2 * SPAN_ID_LEN + span_w_uvarint_len(s->flags) + 2 +
               span_w_uvarint_len(zigzag(s->start_ns)) +
               span_w_uvarint_len((uint64_t)s->end_ns - (uint64_t)s->start_ns) +
               STR_SIZE(s->name) + STR_SIZE(s->status_message) + STR_SIZE(s->trace_state) +
               attrs_size(s->attrs, s->nattrs, &bad) + span_w_uvarint_len(s->dropped_attrs) +
               span_w_uvarint_len(s->nevents) + span_w_uvarint_len(s->dropped_events) +
               span_w_uvarint_len(s->nlinks) + span_w_uvarint_len(s->dropped_links);
    for (size_t i = 0; i < s->nevents; i++) {
        const struct span_event *e = &s->events[i];
        m += span_w_uvarint_len(zigzag((int64_t)((uint64_t)e->time_ns - (uint64_t)s->start_ns))) +
             STR_SIZE(e->name) + attrs_size(e->attrs, e->nattrs, &bad) +
             span_w_uvarint_len(e->dropped_attrs);
    }
    for (size_t i = 0; i < s->nlinks; i++) {
        const struct span_link *l = &s->links[i];
        m += SPAN_TRACE_ID_LEN + SPAN_ID_LEN + STR_SIZE(l->trace_state) +
             span_w_uvarint_len(l->flags) + attrs_size(l->attrs, l->nattrs, &bad) +
             span_w_uvarint_len(l->dropped_attrs);
    }
    return bad ? 0 : m;
}

static inline uint8_t *chunk_str(struct span_chunk_w *w, uint8_t *p, const uint8_t *s,
                                 size_t n, size_t avail);

/* A string of the span: its version-1 str, or (w not NULL) packed into w's chunk. */
static inline uint8_t *put_str(uint8_t *p, struct vg_str s, struct span_chunk_w *w)
{
    if (!w || s.len == 0)
        return span_w_str(p, s); /* (an empty one is the same byte packed) */
    return chunk_str(w, p, (const uint8_t *)s.p, s.len, s.len);
}

static uint8_t *put_attrs(uint8_t *p, const struct span_attr *a, size_t n,
                          struct span_chunk_w *w)
{
    p = span_w_uvarint(p, n);
    for (size_t i = 0; i < n; i++) {
        p = put_str(p, a[i].key, w);
        *p++ = (uint8_t)a[i].type;
        switch (a[i].type) {
        case SPAN_VAL_INT:
            p = span_w_svarint(p, a[i].v.i);
            break;
        case SPAN_VAL_DOUBLE: {
            uint64_t bits;
            memcpy(&bits, &a[i].v.d, sizeof bits);
            for (int k = 0; k < 8; k++)
                *p++ = (uint8_t)(bits >> (8 * k));
            break;
        }
        case SPAN_VAL_BOOL:
            *p++ = a[i].v.b ? 1 : 0;
            break;
        default: /* STRING, BYTES, ARRAY, MAP (validated by the caller) */
            p = put_str(p, a[i].v.s, w);
            break;
        }
    }
    return p;
}

uint8_t *span_w_shared(uint8_t *p, const struct span *s, struct span_chunk_w *w)
{
    p = put_str(p, s->service, w);
    p = put_str(p, s->scope_name, w);
    p = put_str(p, s->scope_version, w);
    p = put_attrs(p, s->resource_attrs, s->nresource_attrs, w);
    p = span_w_uvarint(p, s->dropped_resource_attrs);
    return put_attrs(p, s->scope_attrs, s->nscope_attrs, w);
}

uint8_t *span_w_tail(uint8_t *p, const struct span *s, struct span_chunk_w *w)
{
    p = put_attrs(p, s->attrs, s->nattrs, w);
    p = span_w_uvarint(p, s->dropped_attrs);
    p = span_w_uvarint(p, s->nevents);
    for (size_t i = 0; i < s->nevents; i++) {
        const struct span_event *e = &s->events[i];
        p = span_w_svarint(p, (int64_t)((uint64_t)e->time_ns - (uint64_t)s->start_ns));
        p = put_str(p, e->name, w);
        p = put_attrs(p, e->attrs, e->nattrs, w);
        p = span_w_uvarint(p, e->dropped_attrs);
    }
    p = span_w_uvarint(p, s->dropped_events);
    p = span_w_uvarint(p, s->nlinks);
    for (size_t i = 0; i < s->nlinks; i++) {
        const struct span_link *l = &s->links[i];
        p = span_w_bytes(p, l->trace_id, SPAN_TRACE_ID_LEN);
        p = span_w_bytes(p, l->span_id, SPAN_ID_LEN);
        p = put_str(p, l->trace_state, w);
        p = span_w_uvarint(p, l->flags);
        p = put_attrs(p, l->attrs, l->nattrs, w);
        p = span_w_uvarint(p, l->dropped_attrs);
    }
    return span_w_uvarint(p, s->dropped_links);
}

int span_encode(const struct span *s, struct vg_buf *out, struct vg_err *err)
{
    size_t off, len;
    return span_encode_shared(s, out, &off, &len, err);
}

int span_encode_shared(const struct span *s, struct vg_buf *out, size_t *shared_off,
                       size_t *shared_len, struct vg_err *err)
{
    size_t rest = span_encoded_rest_size(s), shared = span_encoded_shared_size(s);
    if (!rest || !shared)
        return span_check_enums(s, err);
    size_t size = rest + shared;
    uint8_t *p = span_w_begin(out, size);
    if (!p)
        return vg_err_set(err, VG_ENOMEM, "span_encode: out of memory");
    const uint8_t *base = p;
    *p++ = SPAN_ENCODING_VERSION;
    p = span_w_bytes(p, s->trace_id, SPAN_TRACE_ID_LEN);
    p = span_w_bytes(p, s->span_id, SPAN_ID_LEN);
    p = span_w_bytes(p, s->parent_span_id, SPAN_ID_LEN);
    p = span_w_uvarint(p, s->flags);
    *p++ = (uint8_t)s->kind;
    *p++ = (uint8_t)s->status;
    p = span_w_svarint(p, s->start_ns);
    p = span_w_uvarint(p, (uint64_t)s->end_ns - (uint64_t)s->start_ns);
    p = span_w_str(p, s->name);
    p = span_w_str(p, s->status_message);
    p = span_w_str(p, s->trace_state);
    *shared_off = (size_t)(p - base);
    p = span_w_shared(p, s, NULL);
    *shared_len = (size_t)(p - base) - *shared_off;
    p = span_w_tail(p, s, NULL);
    assert((size_t)(p - base) == size);
    span_w_end(out, p);
    return 0;
}

bool span_attr_text(const struct span_attr *a, struct vg_buf *out)
{
    switch (a->type) {
    case SPAN_VAL_STRING:
        vg_buf_append(out, a->v.s.p, a->v.s.len);
        return true;
    case SPAN_VAL_INT: { /* decimal by hand: printf was a tenth of the store's CPU */
        char t[24];
        size_t n = sizeof t;
        uint64_t u = a->v.i < 0 ? 0 - (uint64_t)a->v.i : (uint64_t)a->v.i;
        do {
            t[--n] = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        if (a->v.i < 0)
            t[--n] = '-';
        vg_buf_append(out, t + n, sizeof t - n);
        return true;
    }
    case SPAN_VAL_DOUBLE:
        vg_buf_json_float(out, a->v.d);
        return true;
    case SPAN_VAL_BOOL:
        vg_buf_puts(out, a->v.b ? "true" : "false");
        return true;
    default:
        return false;
    }
}

/* ---- reading ---- */

void span_rd_init(struct span_rd *r, const void *buf, size_t len)
{
    r->p = buf;
    r->len = len;
    r->off = 0;
    r->ok = true;
    r->what = NULL;
}

static void rd_fail(struct span_rd *r, const char *what)
{
    if (r->ok) {
        r->ok = false;
        r->what = what;
    }
}

uint64_t span_rd_uvarint(struct span_rd *r, const char *what)
{
    uint64_t v = 0;
    for (int shift = 0; r->ok && shift < 64; shift += 7) {
        if (r->off >= r->len)
            break;
        uint8_t c = r->p[r->off++];
        if (shift == 63 && c > 1)
            break; /* more than 64 bits */
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            return v;
    }
    rd_fail(r, what);
    return 0;
}

int64_t span_rd_svarint(struct span_rd *r, const char *what)
{
    uint64_t u = span_rd_uvarint(r, what);
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

uint8_t span_rd_u8(struct span_rd *r, const char *what)
{
    if (!r->ok || r->off >= r->len) {
        rd_fail(r, what);
        return 0;
    }
    return r->p[r->off++];
}

const uint8_t *span_rd_bytes(struct span_rd *r, size_t n, const char *what)
{
    if (!r->ok || r->len - r->off < n) {
        rd_fail(r, what);
        return NULL;
    }
    const uint8_t *p = r->p + r->off;
    r->off += n;
    return p;
}

struct vg_str span_rd_str(struct span_rd *r, const char *what)
{
    uint64_t n = span_rd_uvarint(r, what);
    if (r->ok && n > r->len - r->off) {
        rd_fail(r, what);
        return (struct vg_str){ "", 0 };
    }
    const uint8_t *p = span_rd_bytes(r, (size_t)n, what);
    return p ? (struct vg_str){ (const char *)p, (size_t)n } : (struct vg_str){ "", 0 };
}

/* A count of items each at least min_bytes long, checked against the bytes left. */
static size_t rd_count(struct span_rd *r, size_t min_bytes, const char *what)
{
    uint64_t n = span_rd_uvarint(r, what);
    if (r->ok && n > (r->len - r->off) / min_bytes) {
        rd_fail(r, what);
        return 0;
    }
    return (size_t)n;
}

static uint32_t rd_u32(struct span_rd *r, const char *what)
{
    uint64_t v = span_rd_uvarint(r, what);
    if (v > UINT32_MAX)
        rd_fail(r, what);
    return (uint32_t)v;
}

static void rd_id(struct span_rd *r, uint8_t *dst, size_t n, const char *what)
{
    const uint8_t *p = span_rd_bytes(r, n, what);
    if (p)
        memcpy(dst, p, n);
    else
        memset(dst, 0, n);
}

/* Returns -1 when the arena is exhausted (r is left ok so the caller can tell). */
static int rd_attrs(struct span_rd *r, struct vg_arena *a, const struct span_attr **out,
                    size_t *nout, const char *what)
{
    *out = NULL;
    *nout = 0;
    size_t n = rd_count(r, MIN_ATTR_BYTES, what);
    if (!r->ok || n == 0)
        return 0;
    struct span_attr *v = vg_arena_alloc(a, n * sizeof *v);
    if (!v)
        return -1;
    for (size_t i = 0; i < n && r->ok; i++) {
        v[i].key = span_rd_str(r, what);
        uint8_t t = span_rd_u8(r, what);
        if (r->ok && (t < SPAN_VAL_STRING || t > SPAN_VAL_MAX))
            rd_fail(r, what);
        v[i].type = (enum span_val_type)t;
        switch (t) {
        case SPAN_VAL_INT:
            v[i].v.i = span_rd_svarint(r, what);
            break;
        case SPAN_VAL_DOUBLE: {
            const uint8_t *le = span_rd_bytes(r, 8, what);
            uint64_t bits = 0;
            for (int k = 0; le && k < 8; k++)
                bits |= (uint64_t)le[k] << (8 * k);
            memcpy(&v[i].v.d, &bits, sizeof bits);
            break;
        }
        case SPAN_VAL_BOOL: {
            uint8_t b = span_rd_u8(r, what);
            if (b > 1)
                rd_fail(r, what);
            v[i].v.b = b == 1;
            break;
        }
        default:
            v[i].v.s = span_rd_str(r, what);
            break;
        }
    }
    *out = v;
    *nout = n;
    return 0;
}

static int rd_header(struct span_rd *r, struct span *s)
{
    uint8_t ver = span_rd_u8(r, "version");
    if (r->ok && ver != SPAN_ENCODING_VERSION) {
        rd_fail(r, "version");
        return -1;
    }
    rd_id(r, s->trace_id, SPAN_TRACE_ID_LEN, "trace_id");
    rd_id(r, s->span_id, SPAN_ID_LEN, "span_id");
    rd_id(r, s->parent_span_id, SPAN_ID_LEN, "parent_span_id");
    s->flags = rd_u32(r, "flags");
    uint8_t kind = span_rd_u8(r, "kind");
    uint8_t status = span_rd_u8(r, "status");
    if (kind > SPAN_KIND_MAX)
        rd_fail(r, "kind");
    if (status > SPAN_STATUS_MAX)
        rd_fail(r, "status");
    s->kind = (enum span_kind)kind;
    s->status = (enum span_status)status;
    s->start_ns = span_rd_svarint(r, "start_time");
    uint64_t dur = span_rd_uvarint(r, "duration");
    if (r->ok && (dur > INT64_MAX || s->start_ns > INT64_MAX - (int64_t)dur))
        rd_fail(r, "duration");
    s->end_ns = r->ok ? s->start_ns + (int64_t)dur : 0;
    return r->ok ? 0 : -1;
}

static int rd_fail_err(const struct span_rd *r, struct vg_err *err)
{
    return vg_err_set(err, VG_EINVAL, "span: malformed %s at byte %zu of %zu",
                      r->what ? r->what : "encoding", r->off, r->len);
}

int span_decode_header(const void *buf, size_t len, struct span *out, struct vg_err *err)
{
    struct span_rd r;
    span_rd_init(&r, buf, len);
    memset(out, 0, sizeof *out);
    return rd_header(&r, out) ? rd_fail_err(&r, err) : 0;
}

static int rd_events(struct span_rd *r, struct vg_arena *a, struct span *s)
{
    size_t n = rd_count(r, MIN_EVENT_BYTES, "events");
    if (!r->ok || n == 0)
        return 0;
    struct span_event *ev = vg_arena_calloc(a, n * sizeof *ev);
    if (!ev)
        return -1;
    for (size_t i = 0; i < n && r->ok; i++) {
        int64_t d = span_rd_svarint(r, "event time");
        if ((d > 0 && s->start_ns > INT64_MAX - d) || (d < 0 && s->start_ns < INT64_MIN - d))
            rd_fail(r, "event time");
        ev[i].time_ns = r->ok ? s->start_ns + d : 0;
        ev[i].name = span_rd_str(r, "event name");
        if (rd_attrs(r, a, &ev[i].attrs, &ev[i].nattrs, "event attributes"))
            return -1;
        ev[i].dropped_attrs = rd_u32(r, "event dropped attributes");
    }
    s->events = ev;
    s->nevents = n;
    return 0;
}

static int rd_links(struct span_rd *r, struct vg_arena *a, struct span *s)
{
    size_t n = rd_count(r, MIN_LINK_BYTES, "links");
    if (!r->ok || n == 0)
        return 0;
    struct span_link *ln = vg_arena_calloc(a, n * sizeof *ln);
    if (!ln)
        return -1;
    for (size_t i = 0; i < n && r->ok; i++) {
        rd_id(r, ln[i].trace_id, SPAN_TRACE_ID_LEN, "link trace_id");
        rd_id(r, ln[i].span_id, SPAN_ID_LEN, "link span_id");
        ln[i].trace_state = span_rd_str(r, "link trace state");
        ln[i].flags = rd_u32(r, "link flags");
        if (rd_attrs(r, a, &ln[i].attrs, &ln[i].nattrs, "link attributes"))
            return -1;
        ln[i].dropped_attrs = rd_u32(r, "link dropped attributes");
    }
    s->links = ln;
    s->nlinks = n;
    return 0;
}

int span_decode(const void *buf, size_t len, struct vg_arena *arena, struct span *s,
                struct vg_err *err)
{
    struct span_rd r;
    span_rd_init(&r, buf, len);
    memset(s, 0, sizeof *s);
    if (rd_header(&r, s))
        return rd_fail_err(&r, err);
    s->name = span_rd_str(&r, "name");
    s->status_message = span_rd_str(&r, "status message");
    s->trace_state = span_rd_str(&r, "trace state");
    s->service = span_rd_str(&r, "service");
    s->scope_name = span_rd_str(&r, "scope name");
    s->scope_version = span_rd_str(&r, "scope version");
    int oom = rd_attrs(&r, arena, &s->resource_attrs, &s->nresource_attrs,
                       "resource attributes");
    s->dropped_resource_attrs = rd_u32(&r, "dropped resource attributes");
    oom = oom ? oom : rd_attrs(&r, arena, &s->scope_attrs, &s->nscope_attrs, "scope attributes");
    oom = oom ? oom : rd_attrs(&r, arena, &s->attrs, &s->nattrs, "attributes");
    s->dropped_attrs = rd_u32(&r, "dropped attributes");
    oom = oom ? oom : rd_events(&r, arena, s);
    s->dropped_events = rd_u32(&r, "dropped events");
    oom = oom ? oom : rd_links(&r, arena, s);
    s->dropped_links = rd_u32(&r, "dropped links");
    if (oom)
        return vg_err_set(err, VG_ENOMEM, "span: out of memory decoding %zu bytes", len);
    if (r.ok && r.off != r.len)
        rd_fail(&r, "end (trailing bytes)");
    return r.ok ? 0 : rd_fail_err(&r, err);
}

/* ---- chunks ---- */

void span_chunk_append(struct vg_buf *out, const void *enc, size_t len)
{
    if (out->len == 0)
        vg_buf_putc(out, SPAN_CHUNK_VERSION);
    vg_buf_put_uvarint(out, len);
    vg_buf_append(out, enc, len);
}

static void chunk_w_init(struct span_chunk_w *w, struct vg_buf *out, uint8_t version)
{
    w->out = out;
    w->nshared = 0;
    w->version = version;
    w->have_prev = false;
    w->prev_start = 0;
    w->nstr = 0;
    w->nids = 0;
    w->ncopy = 0;
    memset(w->slot, 0, sizeof w->slot);
}

void span_chunk_w_init(struct span_chunk_w *w, struct vg_buf *out)
{
    chunk_w_init(w, out, SPAN_CHUNK_VERSION_4);
}

void span_chunk_w_init_v3(struct span_chunk_w *w, struct vg_buf *out)
{
    chunk_w_init(w, out, SPAN_CHUNK_VERSION_3);
}

/* The index of a shared part already in the chunk equal to (p, n), or -1. */
static int find_shared(const struct span_chunk_w *w, const void *p, size_t n)
{
    for (size_t i = 0; i < w->nshared; i++)
        if (w->shared[i].len == n && memcmp(w->out->p + w->shared[i].off, p, n) == 0)
            return (int)i;
    return -1;
}

/* One version-3 entry (format in span.h). */
static void chunk_add_v3(struct span_chunk_w *w, const uint8_t *e, size_t len,
                         size_t shared_off, size_t shared_len)
{
    struct vg_buf *out = w->out;
    if (shared_off > len || shared_len > len - shared_off) { /* caller bug: store whole */
        shared_off = 0;
        shared_len = 0;
    }
    int k = find_shared(w, e + shared_off, shared_len);
    uint8_t *p = span_w_begin(out, (size_t)4 * SPAN_W_VARINT_MAX + len);
    if (!p)
        return;
    if (k >= 0) { /* the shared part of the k-th carrier, put back at shared_off */
        p = span_w_uvarint(p, (uint64_t)k + 1);
        p = span_w_uvarint(p, shared_off);
        p = span_w_uvarint(p, len - shared_len);
        p = span_w_bytes(p, e, shared_off);
        p = span_w_bytes(p, e + shared_off + shared_len, len - shared_off - shared_len);
        span_w_end(out, p);
        return;
    }
    p = span_w_uvarint(p, 0);
    p = span_w_uvarint(p, shared_off);
    p = span_w_uvarint(p, shared_len);
    p = span_w_uvarint(p, len);
    size_t at = (size_t)((const char *)p - out->p);
    p = span_w_bytes(p, e, len);
    span_w_end(out, p);
    if (w->nshared < SPAN_CHUNK_MAX_SHARED)
        w->shared[w->nshared++] = (struct span_chunk_part){ at + shared_off, shared_len };
}

/* ---- version-4 packing (format in span.h) ----
 * One walker over the version-1 grammar serves both directions: packing reads a
 * version-1 encoding and writes a packed body, unpacking reads a packed body and writes
 * the version-1 encoding. Every field both keep as it is goes through the same code, so
 * the two cannot disagree on the layout. Packing re-encodes only string lengths and
 * start_ns, and refuses (the writer then stores the span verbatim) an encoding whose
 * varints there are longer than needed, so unpacking, which writes the shortest form,
 * gives back every byte. Every read is checked against the input's end and every write
 * against the output's, which unpacking sizes to the entry's declared length. */
struct pk {
    const uint8_t *in, *in_end;
    uint8_t *out, *out_end;
    const uint8_t *base; /* packing: the chunk being written; unpacking: the value */
    struct span_chunk_w *w;     /* packing */
    struct span_chunk_iter *it; /* unpacking */
    bool ok, unpack, oom;
    bool replay; /* unpacking a shared part again: literals join no table */
    bool cmp;    /* replaying against bytes at out instead of writing them */
    const char *what; /* the field that failed */
    size_t id_at;     /* where the span id is: in out packing, in the value unpacking */
};

/* Also empties what is left to read and write, so the fast paths below need not test
 * ok: after a failure every read fails and nothing more is written. */
static void pk_fail(struct pk *k, const char *what)
{
    if (k->ok) {
        k->ok = false;
        k->what = what;
    }
    k->in_end = k->in;
    k->out_end = k->out;
}

static const uint8_t *pk_take(struct pk *k, uint64_t n, const char *what)
{
    if (!k->ok || (uint64_t)(k->in_end - k->in) < n) {
        pk_fail(k, what);
        return NULL;
    }
    const uint8_t *p = k->in;
    k->in += n;
    return p;
}

static void pk_put_slow(struct pk *k, const void *src, size_t n)
{
    if (!k->ok || (size_t)(k->out_end - k->out) < n) {
        pk_fail(k, "span length (the rebuilt span is longer)");
        return;
    }
    if (k->cmp) {
        if (n && memcmp(k->out, src, n) != 0)
            pk_fail(k, "shared part (differs)");
        k->out += n;
        return;
    }
    k->out = span_w_bytes(k->out, src, n);
}

/* The checked writes and reads below run some 60 times a span: each has an inline
 * fast path for the common case (room to write, a one-byte varint), the rest is out of
 * line. */
static inline void pk_put(struct pk *k, const void *src, size_t n)
{
    if (!k->cmp && (size_t)(k->out_end - k->out) >= n) {
        memcpy(k->out, src, n);
        k->out += n;
        return;
    }
    pk_put_slow(k, src, n);
}

static inline void pk_put_uvarint(struct pk *k, uint64_t v)
{
    if (v < 0x80 && !k->cmp && k->out < k->out_end) {
        *k->out++ = (uint8_t)v;
        return;
    }
    uint8_t t[SPAN_W_VARINT_MAX];
    pk_put_slow(k, t, (size_t)(span_w_uvarint(t, v) - t));
}

static uint64_t pk_rd_uvarint_slow(struct pk *k, bool *canon, const char *what)
{
    const uint8_t *p = k->in, *end = k->in_end;
    if (end - p > SPAN_W_VARINT_MAX)
        end = p + SPAN_W_VARINT_MAX;
    uint64_t v = 0;
    for (int shift = 0; p < end; shift += 7) {
        uint8_t c = *p++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (c < 0x80) {
            if (shift == 63 && c > 1)
                break; /* more than 64 bits */
            *canon = p - k->in == 1 || c != 0;
            k->in = p;
            return v;
        }
    }
    pk_fail(k, what);
    *canon = false;
    return 0;
}

/* Reads a uvarint; *canon is false when it has more bytes than its value needs. */
static inline uint64_t pk_rd_uvarint(struct pk *k, bool *canon, const char *what)
{
    if (k->in < k->in_end && *k->in < 0x80) {
        *canon = true;
        return *k->in++;
    }
    return pk_rd_uvarint_slow(k, canon, what);
}

/* A uvarint kept as it is; returns its value. */
static inline uint64_t pk_varint(struct pk *k, const char *what)
{
    if (k->in < k->in_end && *k->in < 0x80 && !k->cmp && k->out < k->out_end) {
        uint8_t c = *k->in++;
        *k->out++ = c;
        return c;
    }
    const uint8_t *p = k->in;
    bool canon;
    uint64_t v = pk_rd_uvarint_slow(k, &canon, what);
    size_t n = (size_t)(k->in - p);
    if (!k->cmp && (size_t)(k->out_end - k->out) >= n)
        while (n--) /* at most 10 bytes: no memcpy call */
            *k->out++ = *p++;
    else
        pk_put_slow(k, p, n);
    return v;
}

static void pk_copy(struct pk *k, size_t n, const char *what)
{
    const uint8_t *p = pk_take(k, n, what);
    if (p)
        pk_put(k, p, n);
}

/* The first and last 8 bytes of a string (a alone, zero-padded, when shorter than 8):
 * with the length they are the whole string up to 16 bytes, so most keys and short
 * values compare equal without memcmp, and they hash in constant time (hashing ran for
 * every byte of every span's strings otherwise) where a span's strings differ (keys,
 * ids and URLs ending in ids). Longer strings with equal words are confirmed by
 * memcmp, so collisions cost time, never correctness. */
static uint32_t str_words(const uint8_t *p, size_t n, const uint8_t *end, uint64_t *wa,
                          uint64_t *wb)
{
    (void)end; /* used on little-endian hosts only */
    uint64_t a = 0, b = 0;
    if (n >= 8) {
        memcpy(&a, p, 8);
        memcpy(&b, p + n - 8, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    } else if (end - p >= 8) { /* one load, the bytes past the string masked off */
        memcpy(&a, p, 8);
        a &= ~(uint64_t)0 >> (64 - 8 * n);
    } else if (n >= 4) { /* two loads overlapping in the middle (a struct's string) */
        uint32_t x, y;
        memcpy(&x, p, 4);
        memcpy(&y, p + n - 4, 4);
        a = (uint64_t)x | (uint64_t)y << (8 * (n - 4));
#endif
    } else {
        for (size_t i = 0; i < n; i++)
            a |= (uint64_t)p[i] << (8 * i);
    }
    *wa = a;
    *wb = b;
    uint64_t h = (a ^ (b * 0x9e3779b97f4a7c15u) ^ n) * 0xff51afd7ed558ccdu;
    return (uint32_t)(h >> 32);
}

static inline uint8_t *chunk_str(struct span_chunk_w *w, uint8_t *p, const uint8_t *s,
                                 size_t n, size_t avail)
{
    if (n == 0) {
        *p++ = 0;
        return p;
    }
    const uint8_t *base = (const uint8_t *)w->out->p;
    uint64_t a, b;
    uint32_t mask = SPAN_CHUNK_W_SLOTS - 1, h = str_words(s, n, s + avail, &a, &b) & mask;
    for (uint32_t i; (i = w->slot[h]) != 0; h = (h + 1) & mask) {
        i--;
        if (w->str_len[i] == n && w->str_a[i] == a && w->str_b[i] == b &&
            (n <= 16 || memcmp(base + w->str_off[i], s, n) == 0))
            return span_w_uvarint(p, (uint64_t)i << 1 | 1);
    }
    bool keep = w->nstr < SPAN_CHUNK_MAX_STRINGS &&
                (size_t)(p - base) + SPAN_W_VARINT_MAX + n <= UINT32_MAX;
    p = span_w_uvarint(p, (uint64_t)n << 2 | (keep ? 2 : 0));
    if (keep) {
        w->str_off[w->nstr] = (uint32_t)(p - base);
        w->str_len[w->nstr] = (uint32_t)n;
        w->str_a[w->nstr] = a;
        w->str_b[w->nstr] = b;
        w->slot[h] = (uint16_t)++w->nstr;
    }
    return span_w_bytes(p, s, n);
}

uint8_t *span_chunk_w_str(struct span_chunk_w *w, uint8_t *p, const void *s, size_t n,
                          size_t avail)
{
    return chunk_str(w, p, s, n, avail);
}

/* A version-1 str read from the encoding being packed, written as span_chunk_w_str. */
static void pk_str_pack(struct pk *k, const char *what)
{
    size_t n;
    if (k->in < k->in_end && *k->in < 0x80) {
        n = *k->in++;
    } else {
        bool canon;
        n = (size_t)pk_rd_uvarint_slow(k, &canon, what);
        if (!canon) {
            pk_fail(k, what);
            return;
        }
    }
    if ((size_t)(k->in_end - k->in) < n || (size_t)(k->out_end - k->out) < SPAN_W_VARINT_MAX + n) {
        pk_fail(k, what);
        return;
    }
    const uint8_t *s = k->in;
    k->in += n;
    k->out = chunk_str(k->w, k->out, s, n, (size_t)(k->in_end - s));
}

/* vg_buf_append without the call while there is room (once per string unpacked). */
static inline void buf_add(struct vg_buf *b, const void *p, size_t n)
{
    if (b->cap - b->len > n) {
        memcpy(b->p + b->len, p, n);
        b->len += n;
    } else {
        vg_buf_append(b, p, n);
    }
}

/* A packed str written back as the version-1 str. */
static void pk_str_unpack(struct pk *k, const char *what)
{
    bool canon;
    uint64_t v = pk_rd_uvarint(k, &canon, what);
    if (!k->ok)
        return;
    struct span_chunk_iter *it = k->it;
    const struct span_chunk_part *tab = it ? (const struct span_chunk_part *)it->strs.p : NULL;
    size_t ntab = it ? it->strs.len / sizeof *tab : k->w->nstr;
    if (v & 1) {
        if ((v >> 1) >= ntab) {
            pk_fail(k, "string reference");
            return;
        }
        size_t i = (size_t)(v >> 1);
        size_t off = it ? tab[i].off : k->w->str_off[i];
        size_t len = it ? tab[i].len : k->w->str_len[i];
        pk_put_uvarint(k, len);
        pk_put(k, k->base + off, len);
        return;
    }
    const uint8_t *s = pk_take(k, v >> 2, what);
    if (!s)
        return;
    size_t n = (size_t)(v >> 2);
    pk_put_uvarint(k, n);
    pk_put(k, s, n);
    if (!(v & 2) || !k->ok || k->replay || !it) /* (packing never adds here) */
        return;
    if (ntab >= SPAN_CHUNK_MAX_STRINGS) {
        pk_fail(k, "string table (more than SPAN_CHUNK_MAX_STRINGS)");
        return;
    }
    struct span_chunk_part e = { (size_t)(s - k->base), n };
    buf_add(&it->strs, &e, sizeof e);
    if (vg_buf_failed(&it->strs)) {
        k->oom = true;
        pk_fail(k, what);
    }
}

static void pk_str(struct pk *k, const char *what)
{
    if (k->unpack)
        pk_str_unpack(k, what);
    else
        pk_str_pack(k, what);
}

static void pk_attrs(struct pk *k, const char *what)
{
    uint64_t n = pk_varint(k, what);
    for (uint64_t i = 0; i < n && k->ok; i++) { /* each reads at least one byte */
        pk_str(k, what);
        const uint8_t *t = pk_take(k, 1, what);
        if (!t)
            return;
        pk_put(k, t, 1);
        switch (*t) {
        case SPAN_VAL_INT:
            pk_varint(k, what);
            break;
        case SPAN_VAL_DOUBLE:
            pk_copy(k, 8, what);
            break;
        case SPAN_VAL_BOOL:
            pk_copy(k, 1, what);
            break;
        case SPAN_VAL_STRING:
        case SPAN_VAL_BYTES:
        case SPAN_VAL_ARRAY:
        case SPAN_VAL_MAP:
            pk_str(k, what);
            break;
        default:
            k->in = t;
            pk_fail(k, what);
            break;
        }
    }
}

/* The shared part: service name through scope attributes. */
static void pk_shared(struct pk *k)
{
    pk_str(k, "service");
    pk_str(k, "scope name");
    pk_str(k, "scope version");
    pk_attrs(k, "resource attributes");
    pk_varint(k, "dropped resource attributes");
    pk_attrs(k, "scope attributes");
}

/* Unpacks again the packed shared part at [off, off + len) of the chunk (k->base). */
static void pk_replay(struct pk *k, const struct span_chunk_part *sh)
{
    struct pk r = *k;
    r.in = k->base + sh->off;
    r.in_end = r.in + sh->len;
    r.unpack = true;
    r.replay = true;
    pk_shared(&r);
    if (r.ok && r.in != r.in_end)
        pk_fail(&r, "shared part");
    k->out = r.out;
    if (!r.ok) {
        k->ok = true;
        pk_fail(k, r.what);
    }
}

/* The fields after the shared part, the same in both directions but for strings. */
static void pk_tail(struct pk *k)
{
    pk_attrs(k, "attributes");
    pk_varint(k, "dropped attributes");
    uint64_t n = pk_varint(k, "events");
    for (uint64_t i = 0; i < n && k->ok; i++) {
        pk_varint(k, "event time");
        pk_str(k, "event name");
        pk_attrs(k, "event attributes");
        pk_varint(k, "event dropped attributes");
    }
    pk_varint(k, "dropped events");
    n = pk_varint(k, "links");
    for (uint64_t i = 0; i < n && k->ok; i++) {
        pk_copy(k, SPAN_TRACE_ID_LEN + SPAN_ID_LEN, "link ids");
        pk_str(k, "link trace state");
        pk_varint(k, "link flags");
        pk_attrs(k, "link attributes");
        pk_varint(k, "link dropped attributes");
    }
    pk_varint(k, "dropped links");
}

static int64_t unzigzag(uint64_t u)
{
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

/* The fields before the shared part; returns start_ns. */
static int64_t pk_head(struct pk *k)
{
    struct span_chunk_w *w = k->w;
    const uint8_t *v = pk_take(k, 1, "version");
    if (v && *v != SPAN_ENCODING_VERSION)
        pk_fail(k, "version");
    const uint8_t *ids = pk_take(k, SPAN_TRACE_ID_LEN + 2 * SPAN_ID_LEN, "ids");
    if (!ids)
        return 0;
    if ((size_t)(k->out_end - k->out) < SPAN_CHUNK_W_IDS_MAX) {
        pk_fail(k, "ids");
        return 0;
    }
    k->out = span_chunk_w_ids(w, k->out, ids, ids + SPAN_TRACE_ID_LEN,
                              ids + SPAN_TRACE_ID_LEN + SPAN_ID_LEN, &k->id_at);
    pk_varint(k, "flags");
    pk_copy(k, 2, "kind and status");
    bool canon;
    int64_t start = unzigzag(pk_rd_uvarint(k, &canon, "start_time"));
    if (k->ok && !canon)
        pk_fail(k, "start_time");
    pk_put_uvarint(k, span_chunk_w_start(w, start));
    pk_varint(k, "duration");
    pk_str(k, "name");
    pk_str(k, "status message");
    pk_str(k, "trace state");
    return start;
}

static int64_t pk_unhead(struct pk *k)
{
    static const uint8_t zero[SPAN_ID_LEN];
    struct span_chunk_iter *it = k->it;
    uint8_t one = SPAN_ENCODING_VERSION;
    pk_put(k, &one, 1);
    const uint8_t *fl = pk_take(k, 1, "id flags");
    if (!fl)
        return 0;
    if (*fl > 7 || (*fl & 6) == 6 || ((*fl & 1) && !it->have_prev)) {
        k->in = fl; /* the error names the byte's own offset */
        pk_fail(k, "id flags");
        return 0;
    }
    if (*fl & 1)
        pk_put(k, it->prev_trace, SPAN_TRACE_ID_LEN);
    else
        pk_copy(k, SPAN_TRACE_ID_LEN, "trace_id");
    k->id_at = (size_t)(k->in - k->base);
    pk_copy(k, SPAN_ID_LEN, "span_id");
    if (*fl & 4) {
        bool canon;
        const uint8_t *at = k->in;
        uint64_t j = pk_rd_uvarint(k, &canon, "parent span reference");
        if (k->ok && j >= it->ids.len / sizeof(size_t)) {
            k->in = at;
            pk_fail(k, "parent span reference");
        }
        if (k->ok) {
            size_t off;
            memcpy(&off, it->ids.p + j * sizeof off, sizeof off);
            pk_put(k, k->base + off, SPAN_ID_LEN);
        }
    } else if (*fl & 2) {
        pk_put(k, zero, SPAN_ID_LEN);
    } else {
        pk_copy(k, SPAN_ID_LEN, "parent_span_id");
    }
    pk_varint(k, "flags");
    pk_copy(k, 2, "kind and status");
    bool canon;
    int64_t d = unzigzag(pk_rd_uvarint(k, &canon, "start_time"));
    int64_t start = (int64_t)((uint64_t)it->prev_start + (uint64_t)d);
    pk_put_uvarint(k, zigzag(start));
    pk_varint(k, "duration");
    pk_str(k, "name");
    pk_str(k, "status message");
    pk_str(k, "trace state");
    return start;
}

/* Forgets the strings remembered since the table held keep (a span that could not be
 * packed). Slots filled later never sit in an older entry's probe run, so clearing
 * them leaves every older entry findable. */
static void str_rollback(struct span_chunk_w *w, uint32_t keep)
{
    if (w->nstr == keep)
        return;
    for (size_t i = 0; i < SPAN_CHUNK_W_SLOTS; i++)
        if (w->slot[i] > keep)
            w->slot[i] = 0;
    w->nstr = keep;
}

uint8_t *span_chunk_w_ids(struct span_chunk_w *w, uint8_t *p, const uint8_t *trace,
                          const uint8_t *span_id, const uint8_t *parent, size_t *id_at)
{
    const uint8_t *base = (const uint8_t *)w->out->p;
    uint8_t fl = (w->have_prev && memcmp(trace, w->prev_trace, SPAN_TRACE_ID_LEN) == 0) |
                 (all_zero(parent, SPAN_ID_LEN) ? 2 : 0);
    size_t pref = w->nids;
    if (!(fl & 2)) /* the parent is most often a recent span of the chunk */
        while (pref > 0 && memcmp(base + w->id_off[pref - 1], parent, SPAN_ID_LEN) != 0)
            pref--;
    fl |= !(fl & 2) && pref > 0 ? 4 : 0;
    *p++ = fl;
    if (!(fl & 1))
        p = span_w_bytes(p, trace, SPAN_TRACE_ID_LEN);
    *id_at = (size_t)(p - base);
    p = span_w_bytes(p, span_id, SPAN_ID_LEN);
    if (fl & 4)
        p = span_w_uvarint(p, pref - 1);
    else if (!(fl & 2))
        p = span_w_bytes(p, parent, SPAN_ID_LEN);
    return p;
}

uint64_t span_chunk_w_start(const struct span_chunk_w *w, int64_t start_ns)
{
    return zigzag((int64_t)((uint64_t)start_ns - (uint64_t)w->prev_start));
}

void span_chunk_w_packed(struct span_chunk_w *w, bool carrier, struct span_chunk_part shared,
                         const void *raw, size_t raw_len, size_t id_at, const uint8_t *trace,
                         int64_t start_ns)
{
    if (carrier && w->nshared < SPAN_CHUNK_MAX_SHARED) {
        bool fits = raw_len <= SPAN_CHUNK_W_COPY - w->ncopy;
        w->shared_copy[w->nshared] = fits ? w->ncopy : SIZE_MAX;
        if (fits) {
            if (raw != w->copy + w->ncopy) /* (span_pack_add encodes it there) */
                memcpy(w->copy + w->ncopy, raw, raw_len);
            w->ncopy += raw_len;
        }
        w->shared_raw[w->nshared] = raw_len;
        w->src[w->nshared].dropped = UINT64_MAX; /* span_pack_add may set it */
        w->shared[w->nshared++] = shared;
    }
    if (w->nids < SPAN_CHUNK_MAX_IDS)
        w->id_off[w->nids++] = (uint32_t)id_at;
    w->have_prev = true;
    memcpy(w->prev_trace, trace, SPAN_TRACE_ID_LEN);
    w->prev_start = start_ns;
}

/* The packed shared part already in the chunk that unpacks to raw (n bytes), or -1.
 * Compares with the writer's copy of the carrier's bytes, or, for one that did not fit
 * there, by unpacking the carrier again against raw. */
int span_chunk_w_find_shared(struct span_chunk_w *w, const void *raw, size_t n)
{
    for (size_t i = 0; i < w->nshared; i++) {
        if (w->shared_raw[i] != n)
            continue;
        if (w->shared_copy[i] != SIZE_MAX) {
            if (memcmp(w->copy + w->shared_copy[i], raw, n) == 0)
                return (int)i;
            continue;
        }
        struct pk k = { .out = (uint8_t *)raw, .out_end = (uint8_t *)raw + n,
                        .base = (const uint8_t *)w->out->p, .w = w, .ok = true,
                        .cmp = true };
        pk_replay(&k, &w->shared[i]);
        if (k.ok && k.out == k.out_end)
            return (int)i;
    }
    return -1;
}

/* One version-4 entry: packed when the encoding allows it, else verbatim. */
static void chunk_add_v4(struct span_chunk_w *w, const uint8_t *e, size_t len,
                         size_t shared_off, size_t shared_len)
{
    struct vg_buf *out = w->out;
    size_t max = 2 * len + 4 * (size_t)SPAN_W_VARINT_MAX + 8; /* a literal grows <= 1 byte */
    uint8_t *p = span_w_begin(out, max);
    if (!p)
        return;
    if (len > 0 && len <= SPAN_CHUNK_V4_MAX_SPAN && shared_off <= len &&
        shared_len <= len - shared_off) {
        uint32_t nstr = w->nstr;
        int ref = span_chunk_w_find_shared(w, e + shared_off, shared_len);
        struct pk k = { .in = e, .in_end = e + len, .out = p, .out_end = p + max,
                        .base = (const uint8_t *)out->p, .w = w, .ok = true };
        k.out = span_w_uvarint(k.out, ref < 0 ? 1 : (uint64_t)ref + 2);
        k.out = span_w_uvarint(k.out, len);
        int64_t start = pk_head(&k);
        if (k.ok && (size_t)(k.in - e) != shared_off)
            pk_fail(&k, "shared part");
        size_t shared_at = (size_t)(k.out - k.base);
        if (ref >= 0)
            k.in += k.ok ? shared_len : 0;
        else
            pk_shared(&k);
        if (k.ok && (size_t)(k.in - e) != shared_off + shared_len)
            pk_fail(&k, "shared part");
        size_t shared_packed = (size_t)(k.out - k.base) - shared_at;
        pk_tail(&k);
        if (k.ok && k.in == k.in_end) {
            span_w_end(out, k.out);
            span_chunk_w_packed(w, ref < 0, (struct span_chunk_part){ shared_at, shared_packed },
                                e + shared_off, shared_len, k.id_at, e + 1, start);
            return;
        }
        str_rollback(w, nstr);
    }
    p = span_w_uvarint(p, 0);
    p = span_w_uvarint(p, len);
    p = span_w_bytes(p, e, len);
    span_w_end(out, p);
}

void span_chunk_add(struct span_chunk_w *w, const void *enc, size_t len, size_t shared_off,
                    size_t shared_len)
{
    if (w->out->len == 0)
        vg_buf_putc(w->out, (char)w->version);
    if (w->version == SPAN_CHUNK_VERSION_3)
        chunk_add_v3(w, enc, len, shared_off, shared_len);
    else
        chunk_add_v4(w, enc, len, shared_off, shared_len);
}

void span_chunk_iter_init(struct span_chunk_iter *it, const void *buf, size_t len)
{
    span_rd_init(&it->r, buf, len);
    it->version = len > 0 ? it->r.p[0] : 0;
    it->single = len > 0 && it->version != SPAN_CHUNK_VERSION &&
                 it->version != SPAN_CHUNK_VERSION_3 && it->version != SPAN_CHUNK_VERSION_4;
    if (!it->single && len > 0)
        it->r.off = 1;
    it->nshared = 0;
    vg_buf_init(&it->scratch);
    vg_buf_init(&it->strs);
    vg_buf_init(&it->ids);
    vg_buf_init(&it->cache);
    it->have_prev = false;
    it->prev_start = 0;
}

void span_chunk_iter_free(struct span_chunk_iter *it)
{
    vg_buf_free(&it->scratch);
    vg_buf_free(&it->strs);
    vg_buf_free(&it->ids);
    vg_buf_free(&it->cache);
}

/* Ends the walk: later calls fail too. */
static int chunk_bad(struct span_rd *r, size_t at, const char *what, struct vg_err *err)
{
    r->ok = false;
    return vg_err_set(err, VG_EINVAL, "span chunk: malformed %s at byte %zu of %zu", what, at,
                      r->len);
}

/* Remembers a version-4 carrier's packed shared part, and its unpacked bytes (raw, n)
 * while the cache holds at most SPAN_CHUNK_ITER_CACHE bytes: later spans then copy
 * them instead of unpacking again (which cost more than all the rest of a span). Out
 * of memory for the cache only means unpacking again. */
static void shared_keep(struct span_chunk_iter *it, size_t off, size_t len, const uint8_t *raw,
                        size_t n)
{
    size_t at = it->cache.len;
    it->shared_cache[it->nshared] = SIZE_MAX;
    if (n <= SPAN_CHUNK_ITER_CACHE - at) {
        vg_buf_append(&it->cache, raw, n);
        if (!vg_buf_failed(&it->cache)) {
            it->shared_cache[it->nshared] = at;
            it->shared_clen[it->nshared] = n;
        }
    }
    it->shared[it->nshared++] = (struct span_chunk_part){ off, len };
}

/* One entry of a version-4 chunk (format in span.h). */
static int chunk_next_v4(struct span_chunk_iter *it, const void **enc, size_t *len,
                         struct vg_err *err)
{
    struct span_rd *r = &it->r;
    size_t at = r->off;
    uint64_t tag = span_rd_uvarint(r, "tag");
    uint64_t n = span_rd_uvarint(r, "span length");
    if (!r->ok || n == 0 || (tag == 0 && n > r->len - r->off) ||
        (tag > 0 && n > SPAN_CHUNK_V4_MAX_SPAN))
        return chunk_bad(r, at, r->ok ? "span length" : r->what, err);
    if (tag == 0) {
        *enc = r->p + r->off;
        *len = (size_t)n;
        r->off += (size_t)n;
        return 1;
    }
    if (tag - 2 >= it->nshared && tag >= 2)
        return chunk_bad(r, at, "shared part reference", err);
    vg_buf_reset(&it->scratch);
    uint8_t *o = span_w_begin(&it->scratch, (size_t)n);
    if (!o) {
        r->ok = false;
        return vg_err_set(err, VG_ENOMEM, "span chunk: out of memory for a %llu-byte span",
                          (unsigned long long)n);
    }
    if (!it->have_prev) { /* room for a typical chunk at once; a failure marks the buffer
                           * failed, and the span that needs it reports VG_ENOMEM */
        vg_buf_reserve(&it->strs, 64 * sizeof(struct span_chunk_part));
        vg_buf_reserve(&it->ids, 32 * sizeof(size_t));
        vg_buf_reserve(&it->cache, 2048);
    }
    struct pk k = { .in = r->p + r->off, .in_end = r->p + r->len, .out = o,
                    .out_end = o + n, .base = r->p, .it = it, .ok = true, .unpack = true };
    int64_t start = pk_unhead(&k);
    if (tag == 1) {
        const uint8_t *sp = k.in;
        const uint8_t *o = k.out;
        pk_shared(&k);
        if (k.ok && it->nshared < SPAN_CHUNK_MAX_SHARED)
            shared_keep(it, (size_t)(sp - r->p), (size_t)(k.in - sp), o, (size_t)(k.out - o));
    } else if (k.ok && it->shared_cache[tag - 2] != SIZE_MAX) {
        pk_put(&k, it->cache.p + it->shared_cache[tag - 2], it->shared_clen[tag - 2]);
    } else if (k.ok) {
        pk_replay(&k, &it->shared[tag - 2]);
    }
    pk_tail(&k);
    if (k.ok && k.out != k.out_end)
        pk_fail(&k, "span length (the rebuilt span is shorter)");
    if (k.oom) {
        r->ok = false;
        return vg_err_set(err, VG_ENOMEM, "span chunk: out of memory for the string table");
    }
    if (!k.ok)
        return chunk_bad(r, (size_t)(k.in - r->p), k.what, err);
    if (it->ids.len / sizeof(size_t) < SPAN_CHUNK_MAX_IDS) {
        buf_add(&it->ids, &k.id_at, sizeof k.id_at);
        if (vg_buf_failed(&it->ids)) {
            r->ok = false;
            return vg_err_set(err, VG_ENOMEM, "span chunk: out of memory for span ids");
        }
    }
    span_w_end(&it->scratch, k.out);
    r->off = (size_t)(k.in - r->p);
    it->have_prev = true;
    memcpy(it->prev_trace, it->scratch.p + 1, SPAN_TRACE_ID_LEN);
    it->prev_start = start;
    *enc = it->scratch.p;
    *len = it->scratch.len;
    return 1;
}

/* One entry of a version-3 chunk (format in span.h). */
static int chunk_next_v3(struct span_chunk_iter *it, const void **enc, size_t *len,
                         struct vg_err *err)
{
    struct span_rd *r = &it->r;
    size_t at = r->off;
    uint64_t ref = span_rd_uvarint(r, "ref");
    uint64_t off = span_rd_uvarint(r, "offset");
    uint64_t slen = ref == 0 ? span_rd_uvarint(r, "shared length") : 0;
    uint64_t n = span_rd_uvarint(r, "length");
    if (!r->ok || n == 0 || n > r->len - r->off)
        return chunk_bad(r, at, "span length", err);
    if (ref > it->nshared || off > n || slen > n - off)
        return chunk_bad(r, at, "shared part", err);
    const uint8_t *p = r->p + r->off;
    r->off += (size_t)n;
    if (ref == 0) {
        if (it->nshared < SPAN_CHUNK_MAX_SHARED)
            it->shared[it->nshared++] = (struct span_chunk_part){ (size_t)(p - r->p) + off,
                                                                  (size_t)slen };
        *enc = p;
        *len = (size_t)n;
        return 1;
    }
    const struct span_chunk_part *sh = &it->shared[ref - 1];
    vg_buf_reset(&it->scratch);
    vg_buf_append(&it->scratch, p, (size_t)off);
    vg_buf_append(&it->scratch, r->p + sh->off, sh->len);
    vg_buf_append(&it->scratch, p + off, (size_t)(n - off));
    if (vg_buf_failed(&it->scratch)) {
        r->ok = false;
        return vg_err_set(err, VG_ENOMEM, "span chunk: out of memory rebuilding a span");
    }
    *enc = it->scratch.p;
    *len = it->scratch.len;
    return 1;
}

int span_chunk_next(struct span_chunk_iter *it, const void **enc, size_t *len,
                    struct vg_err *err)
{
    struct span_rd *r = &it->r;
    if (it->single) { /* the whole value, once (span_decode judges it) */
        if (r->off == r->len)
            return 0;
        *enc = r->p;
        *len = r->len;
        r->off = r->len;
        return 1;
    }
    if (!r->ok)
        return vg_err_set(err, VG_EINVAL, "span chunk: walked past an error at byte %zu of %zu",
                          r->off, r->len);
    if (r->off == r->len && r->off > 1)
        return 0;
    if (it->version == SPAN_CHUNK_VERSION_3)
        return chunk_next_v3(it, enc, len, err);
    if (it->version == SPAN_CHUNK_VERSION_4)
        return chunk_next_v4(it, enc, len, err);
    size_t at = r->off;
    uint64_t n = span_rd_uvarint(r, "chunk span length");
    if (!r->ok || n == 0 || n > r->len - r->off)
        return chunk_bad(r, at, "span length", err);
    *enc = r->p + r->off;
    *len = (size_t)n;
    r->off += (size_t)n;
    return 1;
}
