/* span: see span.h for the model and the exact version-1 byte format.
 *
 * Invariants: span_encode writes exactly what span_decode reads back (the round trip is
 * exact, doubles bit for bit); span_decode never reads outside [buf, buf+len), never
 * allocates more than the input could describe (every attribute, event or link needs at
 * least 2, 3 and 28 encoded bytes, so counts are checked against the bytes left first). */
#include "span.h"

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
static int check_enums(const struct span *s, struct vg_err *err)
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
    return check_enums(s, err);
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

/* Upper bounds of encoded sizes: span_encode reserves once, then writes unchecked (it
 * runs for every stored span; a checked append per field cost more than the copying). */
#define STR_MAX(s) (SPAN_W_VARINT_MAX + (s).len)

static size_t attrs_max(const struct span_attr *a, size_t n)
{
    size_t m = SPAN_W_VARINT_MAX;
    for (size_t i = 0; i < n; i++) {
        m += STR_MAX(a[i].key) + 1;
        switch (a[i].type) {
        case SPAN_VAL_INT:
        case SPAN_VAL_DOUBLE:
        case SPAN_VAL_BOOL:
            m += SPAN_W_VARINT_MAX;
            break;
        default:
            m += STR_MAX(a[i].v.s);
            break;
        }
    }
    return m;
}

static size_t encoded_max(const struct span *s)
{
    size_t m = 1 + SPAN_TRACE_ID_LEN + 2 * SPAN_ID_LEN + 2 + 10 * SPAN_W_VARINT_MAX +
               STR_MAX(s->name) + STR_MAX(s->status_message) + STR_MAX(s->trace_state) +
               STR_MAX(s->service) + STR_MAX(s->scope_name) + STR_MAX(s->scope_version) +
               attrs_max(s->resource_attrs, s->nresource_attrs) +
               attrs_max(s->scope_attrs, s->nscope_attrs) + attrs_max(s->attrs, s->nattrs);
    for (size_t i = 0; i < s->nevents; i++)
        m += (size_t)2 * SPAN_W_VARINT_MAX + STR_MAX(s->events[i].name) +
             attrs_max(s->events[i].attrs, s->events[i].nattrs);
    for (size_t i = 0; i < s->nlinks; i++)
        m += SPAN_TRACE_ID_LEN + SPAN_ID_LEN + 2 * SPAN_W_VARINT_MAX +
             STR_MAX(s->links[i].trace_state) + attrs_max(s->links[i].attrs, s->links[i].nattrs);
    return m;
}

static uint8_t *put_attrs(uint8_t *p, const struct span_attr *a, size_t n)
{
    p = span_w_uvarint(p, n);
    for (size_t i = 0; i < n; i++) {
        p = span_w_str(p, a[i].key);
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
            p = span_w_str(p, a[i].v.s);
            break;
        }
    }
    return p;
}

int span_encode(const struct span *s, struct vg_buf *out, struct vg_err *err)
{
    size_t off, len;
    return span_encode_shared(s, out, &off, &len, err);
}

int span_encode_shared(const struct span *s, struct vg_buf *out, size_t *shared_off,
                       size_t *shared_len, struct vg_err *err)
{
    int rc = check_enums(s, err);
    if (rc)
        return rc;
    uint8_t *p = span_w_begin(out, encoded_max(s));
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
    p = span_w_str(p, s->service);
    p = span_w_str(p, s->scope_name);
    p = span_w_str(p, s->scope_version);
    p = put_attrs(p, s->resource_attrs, s->nresource_attrs);
    p = span_w_uvarint(p, s->dropped_resource_attrs);
    p = put_attrs(p, s->scope_attrs, s->nscope_attrs);
    *shared_len = (size_t)(p - base) - *shared_off;
    p = put_attrs(p, s->attrs, s->nattrs);
    p = span_w_uvarint(p, s->dropped_attrs);
    p = span_w_uvarint(p, s->nevents);
    for (size_t i = 0; i < s->nevents; i++) {
        const struct span_event *e = &s->events[i];
        p = span_w_svarint(p, (int64_t)((uint64_t)e->time_ns - (uint64_t)s->start_ns));
        p = span_w_str(p, e->name);
        p = put_attrs(p, e->attrs, e->nattrs);
        p = span_w_uvarint(p, e->dropped_attrs);
    }
    p = span_w_uvarint(p, s->dropped_events);
    p = span_w_uvarint(p, s->nlinks);
    for (size_t i = 0; i < s->nlinks; i++) {
        const struct span_link *l = &s->links[i];
        p = span_w_bytes(p, l->trace_id, SPAN_TRACE_ID_LEN);
        p = span_w_bytes(p, l->span_id, SPAN_ID_LEN);
        p = span_w_str(p, l->trace_state);
        p = span_w_uvarint(p, l->flags);
        p = put_attrs(p, l->attrs, l->nattrs);
        p = span_w_uvarint(p, l->dropped_attrs);
    }
    p = span_w_uvarint(p, s->dropped_links);
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

void span_chunk_w_init(struct span_chunk_w *w, struct vg_buf *out)
{
    w->out = out;
    w->nshared = 0;
}

/* The index of a shared part already in the chunk equal to (p, n), or -1. */
static int find_shared(const struct span_chunk_w *w, const void *p, size_t n)
{
    for (size_t i = 0; i < w->nshared; i++)
        if (w->shared[i].len == n && memcmp(w->out->p + w->shared[i].off, p, n) == 0)
            return (int)i;
    return -1;
}

void span_chunk_add(struct span_chunk_w *w, const void *enc, size_t len, size_t shared_off,
                    size_t shared_len)
{
    struct vg_buf *out = w->out;
    const uint8_t *e = enc;
    if (out->len == 0)
        vg_buf_putc(out, SPAN_CHUNK_VERSION_3);
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

void span_chunk_iter_init(struct span_chunk_iter *it, const void *buf, size_t len)
{
    span_rd_init(&it->r, buf, len);
    it->version = len > 0 ? it->r.p[0] : 0;
    it->single = len > 0 && it->version != SPAN_CHUNK_VERSION &&
                 it->version != SPAN_CHUNK_VERSION_3;
    if (!it->single && len > 0)
        it->r.off = 1;
    it->nshared = 0;
    vg_buf_init(&it->scratch);
}

void span_chunk_iter_free(struct span_chunk_iter *it)
{
    vg_buf_free(&it->scratch);
}

static int chunk_bad(const struct span_rd *r, size_t at, const char *what, struct vg_err *err)
{
    return vg_err_set(err, VG_EINVAL, "span chunk: malformed %s at byte %zu of %zu", what, at,
                      r->len);
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
    if (vg_buf_failed(&it->scratch))
        return vg_err_set(err, VG_ENOMEM, "span chunk: out of memory rebuilding a span");
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
    if (r->off == r->len && r->off > 1)
        return 0;
    if (it->version == SPAN_CHUNK_VERSION_3)
        return chunk_next_v3(it, enc, len, err);
    size_t at = r->off;
    uint64_t n = span_rd_uvarint(r, "chunk span length");
    if (!r->ok || n == 0 || n > r->len - r->off)
        return vg_err_set(err, VG_EINVAL, "span chunk: malformed span length at byte %zu of %zu",
                          at, r->len);
    *enc = r->p + r->off;
    *len = (size_t)n;
    r->off += (size_t)n;
    return 1;
}
