/* Tests server/ingest/otlp_traces_pb.c: the one-pass reader must give exactly what
 * protobuf-c (pb_check_depth, unpack) followed by otlp_traces_translate gives, or
 * decline. Randomised: thousands of requests built with protobuf-c from a seeded
 * generator (every attribute type, nested arrays and key/value lists, valueless
 * attributes, spans with more attributes than the reader's first loop takes, bad ids, bad times, out-of-range kinds and status codes, events, links,
 * tight limits so that every refusal reason and the span limit occur), half of them
 * then damaged byte-wise (flips, cuts, repeats, inserted bytes and NULs). For each: when
 * the reader takes it, protobuf-c must accept it too and both results must be equal
 * field by field (refusal counts and the first reason included); when protobuf-c refuses
 * it, the reader must decline. Undamaged requests must never be declined. Also: a
 * too-deep array value, a repeated singular message, entity refs, arena exhaustion, and
 * otlp_traces_decode's answers for what the reader declines. */
#include "../../../../server/config.h"
#include "../../../../server/ingest/otlp_receiver.h"
#include "../../../../server/ingest/otlp_traces.h"
#include "../../../../server/ingest/otlp_traces_pb.h"
#include "../../../../server/pb_alloc.h"
#include "../../../../storage/base/vg_alloc.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#define REQ_DESC \
    (&opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor)

typedef Opentelemetry__Proto__Common__V1__KeyValue KV;
typedef Opentelemetry__Proto__Common__V1__AnyValue AV;
typedef Opentelemetry__Proto__Common__V1__ArrayValue ArrV;
typedef Opentelemetry__Proto__Common__V1__KeyValueList KVList;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans RS;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans SS;
typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Trace__V1__Span__Event Event;
typedef Opentelemetry__Proto__Trace__V1__Span__Link Link;
typedef Opentelemetry__Proto__Trace__V1__Status Status;
typedef Opentelemetry__Proto__Resource__V1__Resource Resource;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope Scope;

static struct config *cfg;
static struct vg_arena *ga; /* the generator's structs */

static void setup(void)
{
    cfg = config_default();
    ga = vg_arena_new(1 << 16);
    cr_assert(cfg && ga);
}

static void teardown(void)
{
    config_free(cfg);
    vg_arena_free(ga);
}

TestSuite(otlp_traces_pb, .init = setup, .fini = teardown, .timeout = 120);

/* ---- a seeded generator ---- */

static uint64_t rng;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static unsigned pick(unsigned n)
{
    return (unsigned)(rnd() % n);
}

static void *gcalloc(size_t n)
{
    void *p = vg_arena_calloc(ga, n ? n : 1);
    cr_assert(p);
    return p;
}

static char *rstr(void)
{
    static const char *const words[] = { "", "a", "frontend", "service.name", "http.method",
                                         "GET /api/v1/items", "0123456789abcdefghij",
                                         "k", "db.statement" };
    const char *w = words[pick(sizeof words / sizeof words[0])];
    size_t n = strlen(w);
    char *p = gcalloc(n + 1);
    memcpy(p, w, n);
    return p;
}

static ProtobufCBinaryData rbytes(size_t n)
{
    uint8_t *p = gcalloc(n);
    for (size_t i = 0; i < n; i++)
        p[i] = pick(8) ? (uint8_t)rnd() : 0;
    return (ProtobufCBinaryData){ n, p };
}

/* An id of want bytes mostly; sometimes a wrong length or all zero. */
static ProtobufCBinaryData rid(size_t want)
{
    switch (pick(20)) {
    case 0: return rbytes(0);
    case 1: return rbytes(want - 1);
    case 2: return rbytes(want + 1);
    case 3: return (ProtobufCBinaryData){ want, gcalloc(want) };
    default: {
        ProtobufCBinaryData b = rbytes(want);
        b.data[0] |= 1;
        return b;
    }
    }
}

static uint64_t rtime(void)
{
    switch (pick(30)) {
    case 0: return 0;
    case 1: return (uint64_t)INT64_MAX + 1 + pick(5);
    case 2: return UINT64_MAX;
    default: return 1700000000000000000ULL + pick(1000000);
    }
}

static KV **rattrs(unsigned max, size_t *n, int depth);

static AV *rvalue(int depth)
{
    AV *v = gcalloc(sizeof *v);
    opentelemetry__proto__common__v1__any_value__init(v);
    switch (pick(depth > 3 ? 5 : 9)) {
    case 0:
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
        v->bool_value = pick(2);
        break;
    case 1:
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
        v->int_value = (int64_t)rnd();
        break;
    case 2:
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
        v->double_value = (double)(int64_t)rnd() / 1e3;
        break;
    case 3:
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE;
        v->bytes_value = rbytes(pick(12));
        break;
    case 4: break; /* no value */
    case 5: {
        ArrV *a = gcalloc(sizeof *a);
        opentelemetry__proto__common__v1__array_value__init(a);
        a->n_values = pick(4);
        a->values = gcalloc(a->n_values * sizeof *a->values);
        for (size_t i = 0; i < a->n_values; i++)
            a->values[i] = rvalue(depth + 1);
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
        v->array_value = a;
        break;
    }
    case 6: {
        KVList *l = gcalloc(sizeof *l);
        opentelemetry__proto__common__v1__key_value_list__init(l);
        l->values = rattrs(3, &l->n_values, depth + 1);
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
        v->kvlist_value = l;
        break;
    }
    default:
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        v->string_value = rstr();
        break;
    }
    return v;
}

static KV **rattrs(unsigned max, size_t *n, int depth)
{
    *n = pick(max + 1);
    KV **kv = gcalloc(*n * sizeof *kv);
    for (size_t i = 0; i < *n; i++) {
        kv[i] = gcalloc(sizeof **kv);
        opentelemetry__proto__common__v1__key_value__init(kv[i]);
        kv[i]->key = rstr();
        kv[i]->value = pick(10) ? rvalue(depth) : NULL;
    }
    return kv;
}

static Span *rspan(void)
{
    Span *s = gcalloc(sizeof *s);
    opentelemetry__proto__trace__v1__span__init(s);
    s->trace_id = rid(16);
    s->span_id = rid(8);
    if (pick(2))
        s->parent_span_id = rid(8);
    s->trace_state = rstr();
    s->flags = pick(3) ? 0 : (uint32_t)rnd();
    s->name = rstr();
    s->kind = (Opentelemetry__Proto__Trace__V1__Span__SpanKind)(pick(20) ? (int)pick(6)
                                                                          : (int)rnd());
    s->start_time_unix_nano = rtime();
    s->end_time_unix_nano = pick(10) ? s->start_time_unix_nano + pick(1000) : rtime();
    /* Now and then more attributes than the reader takes in its first loop. */
    s->attributes = rattrs(pick(8) ? 6 : 40, &s->n_attributes, 0);
    s->dropped_attributes_count = pick(4) ? 0 : (uint32_t)rnd();
    s->n_events = pick(3);
    s->events = gcalloc(s->n_events * sizeof *s->events);
    for (size_t i = 0; i < s->n_events; i++) {
        Event *e = s->events[i] = gcalloc(sizeof *e);
        opentelemetry__proto__trace__v1__span__event__init(e);
        e->time_unix_nano = rtime();
        e->name = rstr();
        e->attributes = rattrs(3, &e->n_attributes, 0);
        e->dropped_attributes_count = pick(3);
    }
    s->n_links = pick(3);
    s->links = gcalloc(s->n_links * sizeof *s->links);
    for (size_t i = 0; i < s->n_links; i++) {
        Link *l = s->links[i] = gcalloc(sizeof *l);
        opentelemetry__proto__trace__v1__span__link__init(l);
        l->trace_id = rid(16);
        l->span_id = rid(8);
        l->trace_state = rstr();
        l->flags = pick(2);
        l->attributes = rattrs(2, &l->n_attributes, 0);
        l->dropped_attributes_count = pick(3);
    }
    s->dropped_events_count = pick(3);
    s->dropped_links_count = pick(3);
    if (pick(2)) {
        Status *st = gcalloc(sizeof *st);
        opentelemetry__proto__trace__v1__status__init(st);
        st->code = (Opentelemetry__Proto__Trace__V1__Status__StatusCode)(pick(10) ? (int)pick(3)
                                                                                 : (int)rnd());
        st->message = rstr();
        s->status = st;
    }
    return s;
}

/* A random request, packed; *len its size. */
static uint8_t *rrequest(size_t *len)
{
    otlp_traces_request req;
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(&req);
    req.n_resource_spans = pick(4);
    req.resource_spans = gcalloc(req.n_resource_spans * sizeof *req.resource_spans);
    for (size_t i = 0; i < req.n_resource_spans; i++) {
        RS *rs = req.resource_spans[i] = gcalloc(sizeof *rs);
        opentelemetry__proto__trace__v1__resource_spans__init(rs);
        if (pick(5)) {
            Resource *r = gcalloc(sizeof *r);
            opentelemetry__proto__resource__v1__resource__init(r);
            r->attributes = rattrs(4, &r->n_attributes, 0);
            r->dropped_attributes_count = pick(3);
            rs->resource = r;
        }
        rs->schema_url = pick(2) ? rstr() : (char *)"";
        rs->n_scope_spans = pick(4);
        rs->scope_spans = gcalloc(rs->n_scope_spans * sizeof *rs->scope_spans);
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            SS *ss = rs->scope_spans[j] = gcalloc(sizeof *ss);
            opentelemetry__proto__trace__v1__scope_spans__init(ss);
            if (pick(4)) {
                Scope *sc = gcalloc(sizeof *sc);
                opentelemetry__proto__common__v1__instrumentation_scope__init(sc);
                sc->name = rstr();
                sc->version = rstr();
                sc->attributes = rattrs(2, &sc->n_attributes, 0);
                sc->dropped_attributes_count = pick(2);
                ss->scope = sc;
            }
            ss->n_spans = pick(6);
            ss->spans = gcalloc(ss->n_spans * sizeof *ss->spans);
            for (size_t k = 0; k < ss->n_spans; k++)
                ss->spans[k] = rspan();
        }
    }
    *len = protobuf_c_message_get_packed_size(&req.base);
    uint8_t *p = gcalloc(*len + 64); /* room for mutations */
    protobuf_c_message_pack(&req.base, p);
    return p;
}

/* Damages buf (1 to 3 times); returns the new length (at most len + 64). */
static size_t mutate(uint8_t *buf, size_t len)
{
    for (unsigned m = 1 + pick(3); m > 0; m--) {
        size_t at = len ? pick((unsigned)len) : 0;
        switch (pick(6)) {
        case 0:
            if (len)
                buf[at] ^= (uint8_t)(1u << pick(8));
            break;
        case 1: len = at; break;
        case 2:
            if (len)
                buf[at] = (uint8_t)rnd();
            break;
        case 3:
            if (len)
                buf[at] = 0;
            break;
        default: { /* repeat or insert a few bytes */
            size_t n = 1 + pick(8);
            if (at + n > len)
                break;
            memmove(buf + at + n, buf + at, len - at);
            if (pick(2))
                for (size_t i = 0; i < n; i++)
                    buf[at + i] = (uint8_t)rnd();
            len += n;
            break;
        }
        }
    }
    return len;
}

/* ---- comparing results ---- */

static void same_str(struct vg_str x, struct vg_str y, const char *what)
{
    cr_assert(vg_str_eq(x, y), "%s differs: \"%.*s\" vs \"%.*s\"", what, (int)x.len, x.p,
              (int)y.len, y.p);
}

static void same_attrs(const struct span_attr *x, size_t nx, const struct span_attr *y,
                       size_t ny, const char *what)
{
    cr_assert_eq(nx, ny, "%s: %zu vs %zu attributes", what, nx, ny);
    for (size_t i = 0; i < nx; i++) {
        same_str(x[i].key, y[i].key, "attribute key");
        cr_assert_eq(x[i].type, y[i].type, "%s attribute %zu type", what, i);
        switch (x[i].type) {
        case SPAN_VAL_INT: cr_assert_eq(x[i].v.i, y[i].v.i); break;
        case SPAN_VAL_BOOL: cr_assert_eq(x[i].v.b, y[i].v.b); break;
        case SPAN_VAL_DOUBLE: cr_assert(!memcmp(&x[i].v.d, &y[i].v.d, sizeof x[i].v.d)); break;
        default: same_str(x[i].v.s, y[i].v.s, "attribute value"); break;
        }
    }
}

static void same_span(const struct span *x, const struct span *y)
{
    cr_assert(!memcmp(x->trace_id, y->trace_id, 16) && !memcmp(x->span_id, y->span_id, 8) &&
              !memcmp(x->parent_span_id, y->parent_span_id, 8));
    cr_assert(x->flags == y->flags && x->kind == y->kind && x->status == y->status);
    cr_assert(x->start_ns == y->start_ns && x->end_ns == y->end_ns);
    cr_assert(x->dropped_resource_attrs == y->dropped_resource_attrs &&
              x->dropped_attrs == y->dropped_attrs && x->dropped_events == y->dropped_events &&
              x->dropped_links == y->dropped_links);
    same_str(x->name, y->name, "name");
    same_str(x->status_message, y->status_message, "status message");
    same_str(x->trace_state, y->trace_state, "trace state");
    same_str(x->service, y->service, "service");
    same_str(x->scope_name, y->scope_name, "scope name");
    same_str(x->scope_version, y->scope_version, "scope version");
    same_attrs(x->resource_attrs, x->nresource_attrs, y->resource_attrs, y->nresource_attrs,
               "resource");
    same_attrs(x->scope_attrs, x->nscope_attrs, y->scope_attrs, y->nscope_attrs, "scope");
    same_attrs(x->attrs, x->nattrs, y->attrs, y->nattrs, "span");
    cr_assert_eq(x->nevents, y->nevents);
    for (size_t i = 0; i < x->nevents; i++) {
        const struct span_event *a = &x->events[i], *b = &y->events[i];
        cr_assert(a->time_ns == b->time_ns && a->dropped_attrs == b->dropped_attrs);
        same_str(a->name, b->name, "event name");
        same_attrs(a->attrs, a->nattrs, b->attrs, b->nattrs, "event");
    }
    cr_assert_eq(x->nlinks, y->nlinks);
    for (size_t i = 0; i < x->nlinks; i++) {
        const struct span_link *a = &x->links[i], *b = &y->links[i];
        cr_assert(!memcmp(a->trace_id, b->trace_id, 16) && !memcmp(a->span_id, b->span_id, 8));
        cr_assert(a->flags == b->flags && a->dropped_attrs == b->dropped_attrs);
        same_str(a->trace_state, b->trace_state, "link trace state");
        same_attrs(a->attrs, a->nattrs, b->attrs, b->nattrs, "link");
    }
}

/* protobuf-c's way; 0 with *res, or the decoder's error code. */
static int slow(const uint8_t *buf, size_t len, struct vg_arena *a,
                struct otlp_traces_result *res)
{
    ProtobufCMessage *m;
    struct vg_err err;
    int rc = otlp_receiver_decode(REQ_DESC, buf, len, false, a, OTLP_TRACES_ARENA_FACTOR, &m,
                                  &err);
    return rc < 0 ? rc : otlp_traces_translate((const otlp_traces_request *)m, cfg, a, res, &err);
}

/* Compares both ways on buf; returns whether the reader took it. */
static bool compare(const uint8_t *buf, size_t len)
{
    struct vg_arena *a1 = vg_arena_new(1 << 14), *a2 = vg_arena_new(1 << 14);
    struct otlp_traces_result r1, r2;
    memset(&r1, 0, sizeof r1);
    memset(&r2, 0, sizeof r2);
    int fast = otlp_traces_pb_read(cfg, buf, len, a1, &r1);
    int rc = slow(buf, len, a2, &r2);
    cr_assert(fast == 0 || fast == 1);
    if (rc < 0)
        cr_assert_eq(fast, 1, "the reader took a body protobuf-c refuses (%zu bytes)", len);
    if (fast == 0) {
        cr_assert_eq(rc, 0);
        cr_assert_eq(r1.received, r2.received);
        cr_assert_eq(r1.rejected, r2.rejected);
        cr_assert(!memcmp(r1.rejected_by, r2.rejected_by, sizeof r1.rejected_by));
        cr_assert_str_eq(r1.reason, r2.reason);
        cr_assert_eq(r1.n, r2.n);
        for (size_t i = 0; i < r1.n; i++)
            same_span(&r1.spans[i], &r2.spans[i]);
    }
    vg_arena_free(a1);
    vg_arena_free(a2);
    return fast == 0;
}

/* Limits tight enough for every refusal to occur, or the defaults. */
static void random_limits(void)
{
    struct config *d = config_default();
    cfg->traces_max_spans_per_request = pick(3) ? d->traces_max_spans_per_request : pick(12);
    cfg->traces_max_attributes = pick(3) ? d->traces_max_attributes : pick(5);
    cfg->traces_max_attribute_bytes = pick(3) ? d->traces_max_attribute_bytes : 10 + pick(20);
    config_free(d);
}

Test(otlp_traces_pb, same_as_protobuf_c_on_random_requests)
{
    size_t taken = 0, damaged_taken = 0, refused = 0, rejected_spans = 0, kept_spans = 0;
    for (unsigned seed = 1; seed <= 3000; seed++) {
        rng = seed * 0x9E3779B97F4A7C15ULL;
        vg_arena_reset(ga);
        random_limits();
        size_t len;
        uint8_t *buf = rrequest(&len);
        struct vg_arena *a = vg_arena_new(1 << 14);
        struct otlp_traces_result r;
        cr_assert_eq(otlp_traces_pb_read(cfg, buf, len, a, &r), 0,
                     "seed %u: an undamaged request was declined", seed);
        rejected_spans += r.rejected;
        kept_spans += r.n;
        vg_arena_free(a);
        taken += compare(buf, len);
        len = mutate(buf, len);
        if (compare(buf, len))
            damaged_taken++;
        else
            refused++;
    }
    cr_log_info("undamaged: %zu taken (%zu spans kept, %zu refused); damaged: %zu taken, "
                "%zu declined",
                taken, kept_spans, rejected_spans, damaged_taken, refused);
    cr_assert_eq(taken, 3000);
    cr_assert(damaged_taken > 100 && refused > 100, "damaged: %zu taken, %zu declined",
              damaged_taken, refused);
    cr_assert(rejected_spans > 1000 && kept_spans > 1000);
}

/* ---- hand-made wire ---- */

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* Appends field num (length-delimited) holding [body, body + n) at p. */
static size_t put_len(uint8_t *p, unsigned num, const uint8_t *body, size_t n)
{
    size_t k = put_varint(p, (uint64_t)num << 3 | 2);
    k += put_varint(p + k, n);
    memmove(p + k, body, n);
    return k + n;
}

/* A span's ids (16 and 8 bytes of id_byte and id_byte + 1) and times at p; its size. */
static size_t span_head(uint8_t *p, uint8_t id_byte, uint64_t start, uint64_t end)
{
    uint8_t tid[16], sid[8];
    memset(tid, id_byte, sizeof tid);
    memset(sid, id_byte + 1, sizeof sid);
    size_t s = put_len(p, 1, tid, 16);
    s += put_len(p + s, 2, sid, 8);
    for (unsigned f = 7; f <= 8; f++) { /* fixed64, little-endian */
        uint64_t t = f == 7 ? start : end;
        p[s++] = (uint8_t)(f << 3 | 1);
        for (int i = 0; i < 8; i++, t >>= 8)
            p[s++] = (uint8_t)t;
    }
    return s;
}

/* A request of one span (16-byte trace id, 8-byte span id, times) whose attribute 'k'
 * holds an array value nested depth times; the span is at depth 4, so the innermost
 * AnyValue sits at 6 + 2 * (depth - 1). */
static size_t nested_request(uint8_t *out, size_t cap, unsigned depth)
{
    uint8_t *a = vg_malloc(cap), *b = vg_malloc(cap);
    cr_assert(a && b);
    size_t n = 0;
    for (unsigned i = 0; i < depth; i++) { /* AnyValue{array_value: ArrayValue{values: a}} */
        size_t m = i ? put_len(b, 1, a, n) : 0; /* ArrayValue */
        n = put_len(a, 5, b, m);                /* AnyValue */
    }
    size_t m = put_len(b, 1, (const uint8_t *)"k", 1);
    m += put_len(b + m, 2, a, n); /* KeyValue */
    uint8_t span[64];
    size_t s = span_head(span, 1, (uint64_t)0x17 << 56, (uint64_t)0x18 << 56);
    memmove(a, span, s);
    s += put_len(a + s, 9, b, m);    /* Span */
    m = put_len(b, 2, a, s);         /* ScopeSpans */
    n = put_len(a, 2, b, m);         /* ResourceSpans */
    size_t len = put_len(out, 1, a, n);
    cr_assert(len <= cap);
    vg_free(a);
    vg_free(b);
    return len;
}

Test(otlp_traces_pb, array_values_checked_against_the_depth_limit)
{
    static uint8_t buf[1 << 14];
    size_t len = nested_request(buf, sizeof buf, 3);
    cr_assert(compare(buf, len));
    /* 60 arrays: the innermost AnyValue at depth 126, past PB_MAX_DEPTH. */
    len = nested_request(buf, sizeof buf, 60);
    cr_assert_not(compare(buf, len));
    struct vg_arena *a = vg_arena_new(1 << 14);
    struct otlp_traces_result r;
    struct vg_err err;
    cr_assert_eq(otlp_traces_decode(cfg, buf, len, false, a, &r, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "nested deeper than 100"), "%s", err.msg);
    vg_arena_free(a);
}

Test(otlp_traces_pb, declines_what_protobuf_c_merges_or_refuses)
{
    uint8_t sc[8] = { 0x0a, 0x01, 'x' }; /* InstrumentationScope{name: "x"} */
    uint8_t ss[32], rs[64], req[96];
    size_t n = put_len(ss, 1, sc, 3);
    n += put_len(ss + n, 1, sc, 3); /* the scope twice: protobuf-c merges */
    size_t m = put_len(rs, 2, ss, n);
    size_t len = put_len(req, 1, rs, m);
    cr_assert_not(compare(req, len));
    /* a resource with entity_refs */
    uint8_t res[16];
    size_t r = put_len(res, 3, (const uint8_t *)"\x0a\x01x", 3);
    m = put_len(rs, 1, res, r);
    len = put_len(req, 1, rs, m);
    cr_assert_not(compare(req, len));
    /* a known field with another wire type: resource_spans as a varint */
    uint8_t bad[] = { 0x08, 0x01 };
    cr_assert_not(compare(bad, sizeof bad));
    /* empty and unknown-field-only requests are read */
    cr_assert(compare(bad, 0));
    uint8_t unknown[] = { 0x10, 0x05, 0x1a, 0x00 };
    cr_assert(compare(unknown, sizeof unknown));
}

Test(otlp_traces_pb, strings_end_at_a_nul_as_in_protobuf_c)
{
    uint8_t kv[32], span[96], ss[128], rs[160], req[192];
    size_t k = put_len(kv, 1, (const uint8_t *)"ke\0y", 4);
    uint8_t any[8];
    size_t an = put_len(any, 1, (const uint8_t *)"v\0w", 3);
    k += put_len(kv + k, 2, any, an);
    size_t s = span_head(span, 3, 1, 2);
    s += put_len(span + s, 5, (const uint8_t *)"na\0me", 5);
    s += put_len(span + s, 9, kv, k);
    size_t n = put_len(ss, 2, span, s);
    size_t m = put_len(rs, 2, ss, n);
    size_t len = put_len(req, 1, rs, m);
    cr_assert(compare(req, len));
    struct vg_arena *a = vg_arena_new(1 << 12);
    struct otlp_traces_result r;
    cr_assert_eq(otlp_traces_pb_read(cfg, req, len, a, &r), 0);
    cr_assert_eq(r.n, 1);
    cr_assert(vg_str_eq(r.spans[0].name, VG_STR("na")));
    cr_assert(vg_str_eq(r.spans[0].attrs[0].key, VG_STR("ke")));
    cr_assert(vg_str_eq(r.spans[0].attrs[0].v.s, VG_STR("v")));
    vg_arena_free(a);
}

Test(otlp_traces_pb, arena_exhaustion_declines_and_decode_answers_as_before)
{
    rng = 42;
    size_t len;
    uint8_t *buf = NULL;
    while (!buf || len < 2000)
        buf = rrequest(&len);
    struct vg_arena *a = vg_arena_new(256);
    vg_arena_set_limit(a, 512);
    struct otlp_traces_result r;
    cr_assert_eq(otlp_traces_pb_read(cfg, buf, len, a, &r), 1);
    vg_arena_free(a);
    /* otlp_traces_decode under a tiny limits.max_decoded_bytes: the same 413 as the
     * protobuf-c path gives. */
    cfg->limits.max_decoded_bytes = 64;
    struct vg_err e1, e2;
    a = vg_arena_new(256);
    int rc1 = otlp_traces_decode(cfg, buf, len, false, a, &r, &e1);
    vg_arena_free(a);
    a = vg_arena_new(256);
    size_t outer = otlp_receiver_cap_arena(cfg, a, OTLP_TRACES_ARENA_FACTOR);
    int rc2 = otlp_receiver_cap_or_nomem(slow(buf, len, a, &r), true, OTLP_TRACES_ARENA_FACTOR,
                                         &e2);
    vg_arena_set_limit(a, outer);
    vg_arena_free(a);
    cr_assert_eq(rc1, VG_ETOOLARGE);
    cr_assert_eq(rc1, rc2);
}
