/* otlp_traces_pb: see otlp_traces_pb.h.
 *
 * Each message is read in two loops over its fields: the first takes the scalars (the
 * last occurrence wins, as in protobuf-c), counts the repeated fields and checks every
 * field's wire type; the second, once arrays of the right size are allocated, reads the
 * repeated ones. A span's attributes, up to EARLY_ATTRS of them, are read in its first
 * loop already (into a stack array copied to the arena once counted); their valueless
 * count is added to dropped_attributes_count after the loop, as the second loop would.
 * The request itself is first walked down to its spans to count them (the span limit's
 * message names the total, as the translation's does). Message depths
 * (the request is 1) are those pb_check_depth counts, so an array value nested in an
 * attribute is checked against what is left of PB_MAX_DEPTH.
 *
 * Field numbers are those of proto/otlp_trace.proto, otlp_common.proto and
 * otlp_resource.proto. */
#include "otlp_traces_pb.h"

#include "../pb_alloc.h"
#include "../pb_wire.h"
#include "otlp_common.pb-c.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* Depths of the messages (pb_check_depth's count, the request being 1). */
enum { D_RS = 2, D_RESOURCE = 3, D_SS = 3, D_SCOPE = 4, D_SPAN = 4, D_EVENT = 5 };

static inline bool has_zero_byte(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ULL;
    return ((w - ones) & ~w & (ones << 7)) != 0;
}

/* protobuf-c hands strings over as C strings: they end at the first NUL. Attribute
 * strings are short and hardly ever hold one: whole words are checked without a call
 * (the last word overlapping), and only a word with a zero byte is looked at bytewise. */
static inline __attribute__((always_inline)) struct vg_str str_at(struct pb_rd s)
{
    size_t n = (size_t)(s.end - s.p), i = 0;
    uint64_t w;
    if (n >= 8) {
        for (; i + 8 <= n; i += 8)
            if (memcpy(&w, s.p + i, 8), has_zero_byte(w))
                goto slow;
        if (memcpy(&w, s.p + n - 8, 8), !has_zero_byte(w))
            return (struct vg_str){ (const char *)s.p, n };
    } else if (n >= 4) {
        uint32_t h0, h1;
        memcpy(&h0, s.p, 4);
        memcpy(&h1, s.p + n - 4, 4);
        if (!has_zero_byte(0x0101010100000000ULL | h0) &&
            !has_zero_byte(0x0101010100000000ULL | h1))
            return (struct vg_str){ (const char *)s.p, n };
        i = 0;
    }
slow:
    while (i < n && s.p[i])
        i++;
    return (struct vg_str){ (const char *)s.p, i };
}

static size_t len_of(struct pb_rd s)
{
    return (size_t)(s.end - s.p);
}

struct dec {
    struct vg_arena *a;
    const struct config *cfg;
    int shared;           /* the verdict on the current resource and scope attributes */
    char shared_why[256]; /* (otlp_traces_check_shared), taken once per scope spans */
};

static void *alloc_n(struct dec *d, size_t n, size_t size)
{
    return n ? vg_arena_alloc(d->a, n * size) : NULL;
}

static void add_dropped(uint32_t *dropped, uint32_t n)
{
    if (dropped)
        *dropped = n > UINT32_MAX - *dropped ? UINT32_MAX : *dropped + n;
}

/* An array or key/value list value (message d at depth) as protobuf-c packs it again
 * after unpacking it. False when it is too deep, does not unpack, or memory ran out. */
static bool dec_blob(struct dec *d, const ProtobufCMessageDescriptor *desc, struct pb_rd b,
                     unsigned depth, struct span_attr *out)
{
    size_t n = len_of(b);
    if (pb_check_depth(desc, b.p, n, PB_MAX_DEPTH + 1 - depth, NULL) < 0)
        return false;
    ProtobufCAllocator al;
    pb_alloc_from_arena(d->a, &al);
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, &al, n, b.p);
    if (!m)
        return false;
    size_t packed = protobuf_c_message_get_packed_size(m);
    uint8_t *p = vg_arena_alloc(d->a, packed ? packed : 1);
    if (!p)
        return false;
    if (packed)
        protobuf_c_message_pack(m, p);
    out->v.s = (struct vg_str){ (const char *)p, packed };
    return true;
}

/* An AnyValue at depth into out: 1 with a value, 0 with none, -1 to decline. */
static int dec_any(struct dec *d, struct pb_rd r, unsigned depth, struct span_attr *out)
{
    struct pb_field f = { 0 };
    struct pb_rd blob = { NULL, NULL };
    int set = 0;
    while (r.p < r.end) {
        if (!pb_next_field(&r, &f))
            return -1;
        if (f.num < 1 || f.num > 7)
            continue;
        if (set++) /* a second member of the oneof: protobuf-c's rules, not ours */
            return -1;
        static const unsigned char want[8] = { 0, PB_WT_LEN, PB_WT_VARINT, PB_WT_VARINT, PB_WT_I64,
                                               PB_WT_LEN, PB_WT_LEN, PB_WT_LEN };
        if (f.wt != want[f.num])
            return -1;
        switch (f.num) {
        case 1: out->type = SPAN_VAL_STRING; out->v.s = str_at(f.sub); break;
        case 2: out->type = SPAN_VAL_BOOL; out->v.b = f.v != 0; break;
        case 3: out->type = SPAN_VAL_INT; out->v.i = (int64_t)f.v; break;
        case 4: out->type = SPAN_VAL_DOUBLE; memcpy(&out->v.d, &f.v, sizeof out->v.d); break;
        case 5: out->type = SPAN_VAL_ARRAY; blob = f.sub; break;
        case 6: out->type = SPAN_VAL_MAP; blob = f.sub; break;
        default:
            out->type = SPAN_VAL_BYTES;
            out->v.s = (struct vg_str){ (const char *)f.sub.p, len_of(f.sub) };
            break;
        }
    }
    if (set && (out->type == SPAN_VAL_ARRAY || out->type == SPAN_VAL_MAP)) {
        const ProtobufCMessageDescriptor *desc =
            out->type == SPAN_VAL_ARRAY ? &opentelemetry__proto__common__v1__array_value__descriptor
                                        : &opentelemetry__proto__common__v1__key_value_list__descriptor;
        if (!dec_blob(d, desc, blob, depth + 1, out))
            return -1;
    }
    return set;
}

/* The usual KeyValue, {1: key, 2: AnyValue{one string, int, bool or double}} with
 * one-byte lengths, read in place: 1 when it was one, else 0 (then read it field by
 * field; this reads nothing the general path would read otherwise). */
static inline __attribute__((always_inline)) int kv_common(struct pb_rd r, struct span_attr *out)
{
    const uint8_t *p = r.p;
    size_t n = (size_t)(r.end - p);
    if (n < 6 || p[0] != 0x0a || p[1] >= 0x80)
        return 0;
    size_t kl = p[1];
    if (kl + 6 > n || p[2 + kl] != 0x12 || p[3 + kl] >= 0x80 || 4 + kl + p[3 + kl] != n)
        return 0;
    const uint8_t *q = p + 4 + kl;
    size_t vl = p[3 + kl]; /* >= 2 and < 128 here */
    struct pb_rd t = { q + 1, q + vl };
    uint64_t v;
    switch (q[0]) {
    case 0x0a: /* string_value */
        if (q[1] != vl - 2)
            return 0;
        out->type = SPAN_VAL_STRING;
        out->v.s = str_at((struct pb_rd){ q + 2, q + vl });
        break;
    case 0x10: /* bool_value */
    case 0x18: /* int_value */
        if (!pb_get_varint(&t, &v, 10) || t.p != t.end)
            return 0;
        if (q[0] == 0x10) {
            out->type = SPAN_VAL_BOOL;
            out->v.b = v != 0;
        } else {
            out->type = SPAN_VAL_INT;
            out->v.i = (int64_t)v;
        }
        break;
    case 0x21: /* double_value, little-endian on the wire */
        if (vl != 9)
            return 0;
        v = 0;
        for (size_t i = 8; i > 0; i--)
            v = v << 8 | q[i];
        out->type = SPAN_VAL_DOUBLE;
        memcpy(&out->v.d, &v, sizeof out->v.d);
        break;
    default:
        return 0;
    }
    out->key = str_at((struct pb_rd){ p + 2, p + 2 + kl });
    return 1;
}

/* A KeyValue at depth: 1 kept, 0 without a value, -1 to decline. */
static int dec_kv(struct dec *d, struct pb_rd r, unsigned depth, struct span_attr *out)
{
    struct pb_field f = { 0 };
    struct pb_rd val = { NULL, NULL };
    bool has_val = false;
    out->key = VG_STR("");
    while (r.p < r.end) {
        if (!pb_next_field(&r, &f))
            return -1;
        if (f.num == 1) {
            if (f.wt != PB_WT_LEN)
                return -1;
            out->key = str_at(f.sub);
        } else if (f.num == 2) {
            if (f.wt != PB_WT_LEN || has_val)
                return -1;
            val = f.sub;
            has_val = true;
        }
    }
    return has_val ? dec_any(d, val, depth + 1, out) : 0;
}

/* Appends KeyValue kv (at depth) to arr[*k] when it has a value, else counts it in
 * *dropped (when not NULL). False to decline. */
static inline __attribute__((always_inline)) bool
add_kv(struct dec *d, struct pb_rd kv, unsigned depth, struct span_attr *arr, size_t *k,
       uint32_t *dropped)
{
    int rc = kv_common(kv, &arr[*k]) ? 1 : dec_kv(d, kv, depth, &arr[*k]);
    if (rc < 0)
        return false;
    if (rc == 0)
        add_dropped(dropped, 1);
    else
        ++*k;
    return true;
}

/* The n fields number fnum of message r (length-delimited, checked by the caller), each
 * a KeyValue at depth: valueless ones are left out and counted in *dropped (when not
 * NULL). False to decline. */
static bool dec_attrs(struct dec *d, struct pb_rd r, uint32_t fnum, size_t n, unsigned depth,
                      const struct span_attr **out, size_t *nout, uint32_t *dropped)
{
    *out = NULL;
    *nout = 0;
    if (!n)
        return true;
    struct span_attr *arr = alloc_n(d, n, sizeof *arr);
    if (!arr)
        return false;
    struct pb_field f = { 0 };
    *out = arr;
    while (r.p < r.end) {
        pb_next_field(&r, &f);
        if (f.num == fnum && !add_kv(d, f.sub, depth, arr, nout, dropped))
            return false;
    }
    return true;
}

/* Whether f has the wire type its message declares for it (want[num]; 0xff or past the
 * table: not declared, skipped as unknown). */
static bool wt_ok(const unsigned char *want, size_t nwant, const struct pb_field *f)
{
    return f->num >= nwant || want[f->num] == 0xff || want[f->num] == f->wt;
}

/* ---- spans ---- */

/* Attributes a span may have for them to be read in the first loop (into a stack array,
 * copied to the arena once counted); a span with more reads them all in the second loop
 * (the first EARLY_ATTRS are then read twice; the result is the same). */
#define EARLY_ATTRS 32

/* A span's wire fields before conversion. */
struct raw_span {
    struct pb_rd trace_id, span_id, parent;
    uint64_t start, end;
    size_t nattrs, nevents, nlinks;
    const uint8_t *rep, *rep_end; /* from the first attribute, event or link to the last */
    bool has_status;
    struct pb_rd status;
    /* Attributes read in the first loop while nattrs <= EARLY_ATTRS: the kept ones and
     * the number without a value (added to dropped_attrs after the scalars). */
    struct span_attr early[EARLY_ATTRS];
    size_t nearly;
    uint32_t early_dropped;
};

static const unsigned char SPAN_WT[17] = {
    0xff,     PB_WT_LEN,   PB_WT_LEN,   PB_WT_LEN, PB_WT_LEN, PB_WT_LEN, PB_WT_VARINT, PB_WT_I64, PB_WT_I64,
    PB_WT_LEN,   PB_WT_VARINT, PB_WT_LEN,  PB_WT_VARINT, PB_WT_LEN, PB_WT_VARINT, PB_WT_LEN, PB_WT_I32,
};

/* First loop over a span: scalars into s and raw, counts of the repeated fields, and the
 * attributes into raw->early while they fit, which spares the second loop a walk over
 * them. Measured with bench/callgrind_traces (spangen --spans 20000 --dump, 12
 * attributes a span): dec_span 2,034 -> 1,914 instructions a span, the whole path before
 * the store 3,208 -> 3,089. */
static bool span_scalars(struct dec *d, struct pb_rd r, struct span *s, struct raw_span *raw)
{
    struct pb_field f = { 0 };
    static const struct pb_rd none = { (const uint8_t *)"", (const uint8_t *)"" };
    raw->trace_id = raw->span_id = raw->parent = none;
    while (r.p < r.end) {
        const uint8_t *at = r.p;
        if (!pb_next_field(&r, &f) || !wt_ok(SPAN_WT, sizeof SPAN_WT, &f))
            return false;
        if (f.num == 9 || f.num == 11 || f.num == 13) {
            if (!raw->rep)
                raw->rep = at;
            raw->rep_end = r.p;
        }
        switch (f.num) {
        case 1: raw->trace_id = f.sub; break;
        case 2: raw->span_id = f.sub; break;
        case 3: s->trace_state = str_at(f.sub); break;
        case 4: raw->parent = f.sub; break;
        case 5: s->name = str_at(f.sub); break;
        case 6: s->kind = (enum span_kind)(int32_t)(uint32_t)f.v; break;
        case 7: raw->start = f.v; break;
        case 8: raw->end = f.v; break;
        case 9:
            if (++raw->nattrs <= EARLY_ATTRS &&
                !add_kv(d, f.sub, D_SPAN + 1, raw->early, &raw->nearly, &raw->early_dropped))
                return false;
            break;
        case 10: s->dropped_attrs = (uint32_t)f.v; break;
        case 11: raw->nevents++; break;
        case 12: s->dropped_events = (uint32_t)f.v; break;
        case 13: raw->nlinks++; break;
        case 14: s->dropped_links = (uint32_t)f.v; break;
        case 15:
            if (raw->has_status)
                return false;
            raw->has_status = true;
            raw->status = f.sub;
            break;
        case 16: s->flags = (uint32_t)f.v; break;
        default: break;
        }
    }
    return true;
}

static bool dec_status(struct pb_rd r, struct span *s)
{
    struct pb_field f = { 0 };
    while (r.p < r.end) {
        if (!pb_next_field(&r, &f))
            return false;
        if (f.num == 2) {
            if (f.wt != PB_WT_LEN)
                return false;
            s->status_message = str_at(f.sub);
        } else if (f.num == 3) {
            if (f.wt != PB_WT_VARINT)
                return false;
            s->status = (enum span_status)(int32_t)(uint32_t)f.v;
        }
    }
    return true;
}

/* Counts field fnum of r, checking the wire types of fields 1..nwant - 1. */
static bool count_fields(struct pb_rd r, const unsigned char *want, size_t nwant, uint32_t fnum,
                         size_t *n)
{
    struct pb_field f = { 0 };
    *n = 0;
    while (r.p < r.end) {
        if (!pb_next_field(&r, &f) || !wt_ok(want, nwant, &f))
            return false;
        *n += f.num == fnum;
    }
    return true;
}

static const unsigned char EVENT_WT[5] = { 0xff, PB_WT_I64, PB_WT_LEN, PB_WT_LEN, PB_WT_VARINT };
static const unsigned char LINK_WT[7] = { 0xff, PB_WT_LEN, PB_WT_LEN, PB_WT_LEN, PB_WT_LEN, PB_WT_VARINT, PB_WT_I32 };

/* An event: its time (checked by the caller) in *time. False to decline. */
static bool dec_event(struct dec *d, struct pb_rd r, struct span_event *o, uint64_t *time)
{
    size_t n;
    if (!count_fields(r, EVENT_WT, sizeof EVENT_WT, 3, &n))
        return false;
    memset(o, 0, sizeof *o);
    *time = 0;
    struct pb_rd it = r;
    struct pb_field f = { 0 };
    while (it.p < it.end) {
        pb_next_field(&it, &f);
        if (f.num == 1)
            *time = f.v;
        else if (f.num == 2)
            o->name = str_at(f.sub);
        else if (f.num == 4)
            o->dropped_attrs = (uint32_t)f.v;
    }
    if (!o->name.p)
        o->name = VG_STR("");
    o->time_ns = (int64_t)*time;
    return dec_attrs(d, r, 3, n, D_EVENT + 1, &o->attrs, &o->nattrs, &o->dropped_attrs);
}

/* A link: its ids' lengths (checked by the caller) in tl and sl. False to decline. */
static bool dec_link(struct dec *d, struct pb_rd r, struct span_link *o, size_t *tl, size_t *sl)
{
    size_t n;
    if (!count_fields(r, LINK_WT, sizeof LINK_WT, 4, &n))
        return false;
    memset(o, 0, sizeof *o);
    o->trace_state = VG_STR("");
    *tl = *sl = 0;
    struct pb_rd it = r;
    struct pb_field f = { 0 };
    while (it.p < it.end) {
        pb_next_field(&it, &f);
        switch (f.num) {
        case 1:
            *tl = len_of(f.sub);
            if (*tl == SPAN_TRACE_ID_LEN)
                memcpy(o->trace_id, f.sub.p, SPAN_TRACE_ID_LEN);
            break;
        case 2:
            *sl = len_of(f.sub);
            if (*sl == SPAN_ID_LEN)
                memcpy(o->span_id, f.sub.p, SPAN_ID_LEN);
            break;
        case 3: o->trace_state = str_at(f.sub); break;
        case 5: o->dropped_attrs = (uint32_t)f.v; break;
        case 6: o->flags = (uint32_t)f.v; break;
        default: break;
        }
    }
    return dec_attrs(d, r, 4, n, D_EVENT + 1, &o->attrs, &o->nattrs, &o->dropped_attrs);
}

/* Reads span r into s (resource and scope already there) and judges it as the
 * translation does: *reject is -1 or the reason, with why filled. Every byte is read
 * whatever the verdict (protobuf-c reads them all). False to decline. */
static bool dec_span(struct dec *d, struct pb_rd r, struct span *s, int *reject, char *why,
                     size_t cap)
{
    struct raw_span raw;
    memset(&raw, 0, offsetof(struct raw_span, early));
    raw.nearly = 0;
    raw.early_dropped = 0;
    s->name = s->trace_state = s->status_message = VG_STR("");
    s->flags = 0;
    s->kind = SPAN_KIND_UNSPECIFIED;
    s->status = SPAN_STATUS_UNSET;
    s->dropped_attrs = s->dropped_events = s->dropped_links = 0;
    if (!span_scalars(d, r, s, &raw))
        return false;
    if (raw.has_status && !dec_status(raw.status, s))
        return false;
    struct span_attr *at = alloc_n(d, raw.nattrs, sizeof *at);
    struct span_event *ev = alloc_n(d, raw.nevents, sizeof *ev);
    struct span_link *ln = alloc_n(d, raw.nlinks, sizeof *ln);
    if ((raw.nattrs && !at) || (raw.nevents && !ev) || (raw.nlinks && !ln))
        return false;
    bool early = raw.nattrs <= EARLY_ATTRS;
    s->attrs = at;
    s->nattrs = 0;
    if (early) {
        if (raw.nearly)
            memcpy(at, raw.early, raw.nearly * sizeof *at);
        s->nattrs = raw.nearly;
        add_dropped(&s->dropped_attrs, raw.early_dropped);
    }
    s->events = ev;
    s->links = ln;
    s->nevents = raw.nevents;
    s->nlinks = raw.nlinks;
    /* Event times and link ids are judged in order after the head checks, as the
     * translation does; the first failure is the reason. */
    int ev_reject = -1, ln_reject = -1;
    char ev_why[256], ln_why[256];
    struct pb_field f = { 0 };
    size_t ie = 0, il = 0;
    if (early && !raw.nevents && !raw.nlinks)
        raw.rep = raw.rep_end = NULL; /* nothing left for the second loop */
    for (r = (struct pb_rd){ raw.rep, raw.rep_end }; r.p < r.end;) {
        pb_next_field(&r, &f);
        if (f.num == 9) {
            if (early)
                continue;
            if (!add_kv(d, f.sub, D_SPAN + 1, at, &s->nattrs, &s->dropped_attrs))
                return false;
        } else if (f.num == 11) {
            uint64_t t;
            if (!dec_event(d, f.sub, &ev[ie], &t))
                return false;
            if (ev_reject < 0)
                ev_reject = otlp_traces_check_event(ie, t, ev_why, sizeof ev_why);
            ie++;
        } else if (f.num == 13) {
            size_t tl, sl;
            if (!dec_link(d, f.sub, &ln[il], &tl, &sl))
                return false;
            if (ln_reject < 0)
                ln_reject = otlp_traces_check_link(il, tl, sl, ln_why, sizeof ln_why);
            il++;
        }
    }
    *reject = otlp_traces_check_head(len_of(raw.trace_id), len_of(raw.span_id),
                                     len_of(raw.parent), raw.start, raw.end, why, cap);
    if (*reject >= 0)
        return true;
    if (ev_reject >= 0 || ln_reject >= 0) {
        *reject = ev_reject >= 0 ? ev_reject : ln_reject;
        snprintf(why, cap, "%s", ev_reject >= 0 ? ev_why : ln_why);
        return true;
    }
    memcpy(s->trace_id, raw.trace_id.p, SPAN_TRACE_ID_LEN);
    memcpy(s->span_id, raw.span_id.p, SPAN_ID_LEN);
    memset(s->parent_span_id, 0, SPAN_ID_LEN);
    if (len_of(raw.parent))
        memcpy(s->parent_span_id, raw.parent.p, SPAN_ID_LEN);
    s->start_ns = (int64_t)raw.start;
    s->end_ns = (int64_t)raw.end;
    *reject = otlp_traces_check_with(d->cfg, s, NULL, d->shared, d->shared_why, why, cap);
    return true;
}

/* ---- resource and scope ---- */

static const unsigned char RESOURCE_WT[4] = { 0xff, PB_WT_LEN, PB_WT_VARINT, PB_WT_LEN };
static const unsigned char SCOPE_WT[5] = { 0xff, PB_WT_LEN, PB_WT_LEN, PB_WT_LEN, PB_WT_VARINT };
static const unsigned char GROUP_WT[4] = { 0xff, PB_WT_LEN, PB_WT_LEN, PB_WT_LEN }; /* RS and SS */

static bool dec_resource(struct dec *d, struct pb_rd r, struct span *base)
{
    size_t n, refs;
    if (!count_fields(r, RESOURCE_WT, sizeof RESOURCE_WT, 1, &n) ||
        !count_fields(r, RESOURCE_WT, sizeof RESOURCE_WT, 3, &refs) || refs)
        return false; /* entity_refs: left to protobuf-c */
    struct pb_rd it = r;
    struct pb_field f = { 0 };
    while (it.p < it.end) {
        pb_next_field(&it, &f);
        if (f.num == 2)
            base->dropped_resource_attrs = (uint32_t)f.v;
    }
    if (!dec_attrs(d, r, 1, n, D_RESOURCE + 1, &base->resource_attrs, &base->nresource_attrs,
                   &base->dropped_resource_attrs))
        return false;
    base->service = otlp_traces_service_of(base->resource_attrs, base->nresource_attrs);
    return true;
}

static bool dec_scope(struct dec *d, struct pb_rd r, struct span *base)
{
    size_t n;
    if (!count_fields(r, SCOPE_WT, sizeof SCOPE_WT, 3, &n))
        return false;
    struct pb_rd it = r;
    struct pb_field f = { 0 };
    while (it.p < it.end) {
        pb_next_field(&it, &f);
        if (f.num == 1)
            base->scope_name = str_at(f.sub);
        else if (f.num == 2)
            base->scope_version = str_at(f.sub);
    }
    return dec_attrs(d, r, 3, n, D_SCOPE + 1, &base->scope_attrs, &base->nscope_attrs, NULL);
}

/* The field 1 of a ResourceSpans or ScopeSpans r (its resource or scope), which
 * count_spans saw at most once, in *one; false when there is none. */
static bool first_field1(struct pb_rd r, struct pb_rd *one)
{
    struct pb_field f = { 0 };
    while (r.p < r.end) {
        pb_next_field(&r, &f);
        if (f.num == 1) {
            *one = f.sub;
            return true;
        }
    }
    return false;
}

/* Fields 1 and 2 of a ResourceSpans or ScopeSpans r, every header checked: false when
 * malformed or field 1 (resource, scope) occurs twice (protobuf-c merges those). */
static bool count_group(struct pb_rd r, size_t *n2)
{
    struct pb_field f = { 0 };
    size_t n1 = 0;
    *n2 = 0;
    while (r.p < r.end) {
        if (!pb_next_field(&r, &f) || !wt_ok(GROUP_WT, sizeof GROUP_WT, &f))
            return false;
        n1 += f.num == 1;
        *n2 += f.num == 2;
    }
    return n1 <= 1;
}

/* Walks the request down to its scope spans: every field header sound and of its
 * declared type, no resource or scope twice; *total = spans. */
static bool count_spans(struct pb_rd req, size_t *total)
{
    struct pb_field f = { 0 }, g = { 0 };
    size_t n;
    *total = 0;
    while (req.p < req.end) {
        if (!pb_next_field(&req, &f) || (f.num == 1 && f.wt != PB_WT_LEN))
            return false;
        if (f.num != 1)
            continue;
        if (!count_group(f.sub, &n))
            return false;
        for (struct pb_rd rs = f.sub; rs.p < rs.end;) {
            pb_next_field(&rs, &g);
            if (g.num != 2)
                continue;
            if (!count_group(g.sub, &n))
                return false;
            *total += n;
        }
    }
    return true;
}

int otlp_traces_pb_read(const struct config *cfg, const uint8_t *body, size_t len,
                        struct vg_arena *a, struct otlp_traces_result *res)
{
    struct dec d = { .a = a, .cfg = cfg };
    struct pb_rd req = { body, body + len };
    size_t total;
    if (!count_spans(req, &total))
        return 1;
    size_t max = (size_t)cfg->traces_max_spans_per_request;
    if (otlp_traces_result_init(res, total < max ? total : max, a, NULL) < 0)
        return 1;
    char why[256];
    struct pb_field f = { 0 }, g = { 0 }, h = { 0 };
    size_t i = 0;
    while (req.p < req.end) {
        pb_next_field(&req, &f);
        if (f.num != 1)
            continue;
        struct span base;
        memset(&base, 0, sizeof base);
        struct pb_rd one;
        if (first_field1(f.sub, &one) && !dec_resource(&d, one, &base))
            return 1;
        size_t j = 0;
        for (struct pb_rd rs = f.sub; rs.p < rs.end;) {
            pb_next_field(&rs, &g);
            if (g.num != 2)
                continue;
            base.scope_name = base.scope_version = VG_STR("");
            base.scope_attrs = NULL;
            base.nscope_attrs = 0;
            if (first_field1(g.sub, &one) && !dec_scope(&d, one, &base))
                return 1;
            d.shared = otlp_traces_check_shared(cfg, &base, d.shared_why, sizeof d.shared_why);
            size_t k = 0;
            for (struct pb_rd ss = g.sub; ss.p < ss.end;) {
                pb_next_field(&ss, &h);
                if (h.num != 2)
                    continue;
                res->received++;
                struct span scratch, *s = res->received > max ? &scratch : &res->spans[res->n];
                *s = base;
                int reject;
                if (!dec_span(&d, h.sub, s, &reject, why, sizeof why))
                    return 1;
                if (s == &scratch)
                    otlp_traces_refuse_limit(res, i, j, k, total, max);
                else if (reject >= 0)
                    otlp_traces_refuse_at(res, i, j, k, reject, why);
                else
                    res->n++;
                k++;
            }
            j++;
        }
        i++;
    }
    return 0;
}
