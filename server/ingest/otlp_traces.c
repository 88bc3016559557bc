/* otlp_traces: see otlp_traces.h.
 *
 * Wire formats sent:
 *   ExportTraceServiceResponse: empty (0 bytes / "{}") when every span was stored, else
 *     partial_success {rejected_spans (1, int64), error_message (2, string)}, the message
 *     "<k> of <n> spans rejected; first: <reason>" (and the store's own refusals after it).
 * The partial-success rule is the OTLP specification's ("Partial Success"): the request
 * is acknowledged, the client must not retry, and the count says what was dropped. */
#include "otlp_traces.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_log.h"
#include "../grpc.h"
#include "../http.h"
#include "../pb_alloc.h"
#include "ingest.h"
#include "otlp_receiver.h"
#include "otlp_traces_pb.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef Opentelemetry__Proto__Common__V1__KeyValue pb_kv;
typedef Opentelemetry__Proto__Common__V1__AnyValue pb_any;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope pb_scope;
typedef Opentelemetry__Proto__Resource__V1__Resource pb_resource;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans pb_rs;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans pb_ss;
typedef Opentelemetry__Proto__Trace__V1__Span pb_span;
typedef Opentelemetry__Proto__Trace__V1__Span__Event pb_event;
typedef Opentelemetry__Proto__Trace__V1__Span__Link pb_link;
typedef Opentelemetry__Proto__Trace__V1__Status pb_status;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse pb_resp;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTracePartialSuccess pb_partial;

#define REQ_DESC (&opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor)
#define RECV_HTTP "otlp_traces_http"
#define RECV_GRPC "otlp_traces_grpc"

static struct vg_complaint complain_invalid;
static struct vg_complaint complain_partial;
static struct vg_complaint complain_storage;

static const char *const reject_names[OTLP_TRACES_REJECT_COUNT] = {
    [OTLP_TRACES_REJECT_TRACE_ID] = "invalid_trace_id",
    [OTLP_TRACES_REJECT_SPAN_ID] = "invalid_span_id",
    [OTLP_TRACES_REJECT_PARENT_ID] = "invalid_parent_span_id",
    [OTLP_TRACES_REJECT_TIMESTAMPS] = "invalid_timestamps",
    [OTLP_TRACES_REJECT_ATTR_COUNT] = "too_many_attributes",
    [OTLP_TRACES_REJECT_ATTR_SIZE] = "attribute_too_large",
    [OTLP_TRACES_REJECT_SPAN_LIMIT] = "too_many_spans",
    [OTLP_TRACES_REJECT_MALFORMED] = "malformed_span",
};

const char *otlp_traces_reject_name(enum otlp_traces_reject r)
{
    return (unsigned)r < OTLP_TRACES_REJECT_COUNT ? reject_names[r] : "unknown";
}

/* ---- shared checks ---- */

int otlp_traces_result_init(struct otlp_traces_result *res, size_t max, struct vg_arena *a,
                            struct vg_err *err)
{
    memset(res, 0, sizeof *res);
    res->spans = vg_arena_alloc(a, (max ? max : 1) * sizeof *res->spans);
    if (!res->spans)
        return vg_err_set(err, VG_ENOMEM, "out of memory translating %zu spans", max);
    return 0;
}

void otlp_traces_refuse(struct otlp_traces_result *res, enum otlp_traces_reject r,
                        const char *why)
{
    res->rejected++;
    res->rejected_by[r]++;
    if (!res->reason[0])
        snprintf(res->reason, sizeof res->reason, "%s", why);
}

void otlp_traces_count_refused(struct vigil *v, const char *receiver,
                               const struct otlp_traces_result *res)
{
    for (int r = 0; r < OTLP_TRACES_REJECT_COUNT; r++)
        ingest_count_spans_rejected(v, receiver, reject_names[r], res->rejected_by[r]);
}

static int refuse_fmt(char *why, size_t cap, const char *where, int r, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int refuse_fmt(char *why, size_t cap, const char *where, int r, const char *fmt, ...)
{
    int n = where ? snprintf(why, cap, "%s: ", where) : 0;
    if (n >= 0 && (size_t)n < cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why + n, cap - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return r;
}

/* n is a multiple of 8 (ids): a word at a time, as this runs twice per span. */
static bool all_zero(const uint8_t *p, size_t n)
{
    uint64_t acc = 0, w;
    for (size_t i = 0; i < n; i += 8)
        acc |= (memcpy(&w, p + i, 8), w);
    return acc == 0;
}

static size_t attr_bytes(const struct span_attr *a)
{
    switch (a->type) {
    case SPAN_VAL_STRING:
    case SPAN_VAL_BYTES:
    case SPAN_VAL_ARRAY:
    case SPAN_VAL_MAP: return a->key.len + a->v.s.len;
    default: return a->key.len + 8;
    }
}

/* Checks one attribute list against the limits; -1 or the reason. */
static int check_attrs(const struct config *cfg, const struct span_attr *at, size_t n,
                       const char *where, const char *list, char *why, size_t cap)
{
    if ((int64_t)n > cfg->traces_max_attributes)
        return refuse_fmt(why, cap, where, OTLP_TRACES_REJECT_ATTR_COUNT,
                          "%s has %zu attributes, more than the limit of %lld "
                          "(traces.max_attributes)",
                          list, n, (long long)cfg->traces_max_attributes);
    for (size_t i = 0; i < n; i++) {
        size_t b = attr_bytes(&at[i]);
        if ((int64_t)b > cfg->traces_max_attribute_bytes)
            return refuse_fmt(why, cap, where, OTLP_TRACES_REJECT_ATTR_SIZE,
                              "%s attribute \"%.*s\" is %zu bytes, more than the limit of "
                              "%lld (traces.max_attribute_bytes)",
                              list, (int)(at[i].key.len > 64 ? 64 : at[i].key.len), at[i].key.p,
                              b, (long long)cfg->traces_max_attribute_bytes);
    }
    return -1;
}

int otlp_traces_check_shared(const struct config *cfg, const struct span *s, char *why,
                             size_t cap)
{
    int r = check_attrs(cfg, s->resource_attrs, s->nresource_attrs, NULL, "resource", why, cap);
    if (r < 0)
        r = check_attrs(cfg, s->scope_attrs, s->nscope_attrs, NULL, "scope", why, cap);
    return r;
}

int otlp_traces_check_with(const struct config *cfg, const struct span *s, const char *where,
                           int shared, const char *shared_why, char *why, size_t cap)
{
    if (all_zero(s->trace_id, SPAN_TRACE_ID_LEN))
        return refuse_fmt(why, cap, where, OTLP_TRACES_REJECT_TRACE_ID, "trace id is all zero");
    if (all_zero(s->span_id, SPAN_ID_LEN))
        return refuse_fmt(why, cap, where, OTLP_TRACES_REJECT_SPAN_ID, "span id is all zero");
    if (s->start_ns <= 0)
        return refuse_fmt(why, cap, where, OTLP_TRACES_REJECT_TIMESTAMPS,
                          "start time is missing");
    if (s->end_ns < s->start_ns)
        return refuse_fmt(why, cap, where, OTLP_TRACES_REJECT_TIMESTAMPS,
                          "end time %lld is before start time %lld", (long long)s->end_ns,
                          (long long)s->start_ns);
    if ((unsigned)s->kind > SPAN_KIND_MAX)
        return refuse_fmt(why, cap, where, OTLP_TRACES_REJECT_MALFORMED,
                          "kind %d is not a SpanKind", (int)s->kind);
    if ((unsigned)s->status > SPAN_STATUS_MAX)
        return refuse_fmt(why, cap, where, OTLP_TRACES_REJECT_MALFORMED,
                          "status code %d is not a StatusCode", (int)s->status);
    if (shared >= 0)
        return refuse_fmt(why, cap, where, shared, "%s", shared_why);
    int r = check_attrs(cfg, s->attrs, s->nattrs, where, "span", why, cap);
    for (size_t i = 0; r < 0 && s->events && i < s->nevents; i++)
        r = check_attrs(cfg, s->events[i].attrs, s->events[i].nattrs, where, "event", why, cap);
    for (size_t i = 0; r < 0 && s->links && i < s->nlinks; i++)
        r = check_attrs(cfg, s->links[i].attrs, s->links[i].nattrs, where, "link", why, cap);
    return r;
}

int otlp_traces_check(const struct config *cfg, const struct span *s, const char *where,
                      char *why, size_t cap)
{
    char shared_why[256];
    int shared = otlp_traces_check_shared(cfg, s, shared_why, sizeof shared_why);
    return otlp_traces_check_with(cfg, s, where, shared, shared_why, why, cap);
}

static int hexval(char ch)
{
    static const char digits[] = "0123456789abcdef";
    const char *p = ch ? strchr(digits, tolower((unsigned char)ch)) : NULL;
    return p ? (int)(p - digits) : -1;
}

bool otlp_traces_parse_id(const char *s, size_t len, uint8_t *out, size_t n)
{
    if (len == 0 || len > 2 * n)
        return false;
    memset(out, 0, n);
    for (size_t i = 0; i < len; i++) {
        int v = hexval(s[len - 1 - i]);
        if (v < 0)
            return false;
        out[n - 1 - i / 2] |= (uint8_t)(i % 2 ? v << 4 : v);
    }
    return true;
}

/* ---- OTLP -> span ---- */

/* protobuf-c strings carry no length; an absent one reads as empty. */
static struct vg_str str_of(const char *s)
{
    return s ? vg_str_c(s) : VG_STR("");
}

/* Keeps an array or key/value list as its protobuf encoding. 1, or -1 out of memory. */
static int pack_blob(struct vg_arena *a, const ProtobufCMessage *m, enum span_val_type t,
                     struct span_attr *out)
{
    size_t n = m ? protobuf_c_message_get_packed_size(m) : 0;
    uint8_t *p = vg_arena_alloc(a, n ? n : 1);
    if (!p)
        return -1;
    if (n)
        protobuf_c_message_pack(m, p);
    out->type = t;
    out->v.s = (struct vg_str){ (const char *)p, n };
    return 1;
}

/* 1 with out's value set, 0 when v holds no value, -1 out of memory. */
static int conv_value(struct vg_arena *a, const pb_any *v, struct span_attr *out)
{
    if (!v)
        return 0;
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        out->type = SPAN_VAL_STRING;
        out->v.s = str_of(v->string_value);
        return 1;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        out->type = SPAN_VAL_BOOL;
        out->v.b = v->bool_value != 0;
        return 1;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        out->type = SPAN_VAL_INT;
        out->v.i = v->int_value;
        return 1;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        out->type = SPAN_VAL_DOUBLE;
        out->v.d = v->double_value;
        return 1;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
        out->type = SPAN_VAL_BYTES;
        out->v.s = (struct vg_str){ (const char *)v->bytes_value.data, v->bytes_value.len };
        return 1;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
        return pack_blob(a, v->array_value ? &v->array_value->base : NULL, SPAN_VAL_ARRAY, out);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
        return pack_blob(a, v->kvlist_value ? &v->kvlist_value->base : NULL, SPAN_VAL_MAP,
                         out);
    default:
        return 0;
    }
}

static void add_dropped(uint32_t *dropped, uint32_t n)
{
    if (dropped)
        *dropped = n > UINT32_MAX - *dropped ? UINT32_MAX : *dropped + n;
}

/* Converts an OTLP attribute list; valueless entries are dropped (and counted in
 * *dropped when given). 0 or VG_ENOMEM. */
static int conv_attrs(struct vg_arena *a, pb_kv *const *kv, size_t n,
                      const struct span_attr **out, size_t *nout, uint32_t *dropped)
{
    *out = NULL;
    *nout = 0;
    if (!n)
        return 0;
    struct span_attr *arr = vg_arena_alloc(a, n * sizeof *arr);
    if (!arr)
        return VG_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!kv[i])
            continue;
        arr[k].key = str_of(kv[i]->key);
        int rc = conv_value(a, kv[i]->value, &arr[k]);
        if (rc < 0)
            return VG_ENOMEM;
        if (rc == 0)
            add_dropped(dropped, 1);
        else
            k++;
    }
    *out = arr;
    *nout = k;
    return 0;
}

int otlp_traces_check_head(size_t trace_id_len, size_t span_id_len, size_t parent_len,
                           uint64_t start, uint64_t end, char *why, size_t cap)
{
    if (trace_id_len != SPAN_TRACE_ID_LEN)
        return refuse_fmt(why, cap, NULL, OTLP_TRACES_REJECT_TRACE_ID,
                          "trace id is %zu bytes, must be 16", trace_id_len);
    if (span_id_len != SPAN_ID_LEN)
        return refuse_fmt(why, cap, NULL, OTLP_TRACES_REJECT_SPAN_ID,
                          "span id is %zu bytes, must be 8", span_id_len);
    if (parent_len && parent_len != SPAN_ID_LEN)
        return refuse_fmt(why, cap, NULL, OTLP_TRACES_REJECT_PARENT_ID,
                          "parent span id is %zu bytes, must be 8 or empty", parent_len);
    if (start > INT64_MAX || end > INT64_MAX)
        return refuse_fmt(why, cap, NULL, OTLP_TRACES_REJECT_TIMESTAMPS,
                          "start or end time is past the year 2262");
    return -1;
}

int otlp_traces_check_event(size_t i, uint64_t time, char *why, size_t cap)
{
    if (time > INT64_MAX)
        return refuse_fmt(why, cap, NULL, OTLP_TRACES_REJECT_TIMESTAMPS,
                          "events[%zu]: time is past the year 2262", i);
    return -1;
}

int otlp_traces_check_link(size_t i, size_t trace_id_len, size_t span_id_len, char *why,
                           size_t cap)
{
    if (trace_id_len != SPAN_TRACE_ID_LEN || span_id_len != SPAN_ID_LEN)
        return refuse_fmt(why, cap, NULL, OTLP_TRACES_REJECT_MALFORMED,
                          "links[%zu]: ids are %zu and %zu bytes, must be 16 and 8", i,
                          trace_id_len, span_id_len);
    return -1;
}

/* Fills the span's own fields of s (resource and scope are already there). 0 or
 * VG_ENOMEM; *reject is -1 or the reason, with why filled. */
static int conv_span(const struct config *cfg, struct vg_arena *a, const pb_span *p,
                     struct span *s, int *reject, char *why, size_t cap)
{
    *reject = otlp_traces_check_head(p->trace_id.len, p->span_id.len, p->parent_span_id.len,
                                     p->start_time_unix_nano, p->end_time_unix_nano, why, cap);
    if (*reject >= 0)
        return 0;
    memcpy(s->trace_id, p->trace_id.data, SPAN_TRACE_ID_LEN);
    memcpy(s->span_id, p->span_id.data, SPAN_ID_LEN);
    if (p->parent_span_id.len)
        memcpy(s->parent_span_id, p->parent_span_id.data, SPAN_ID_LEN);
    s->flags = p->flags;
    s->kind = (enum span_kind)p->kind;
    s->status = p->status ? (enum span_status)p->status->code : SPAN_STATUS_UNSET;
    s->status_message = str_of(p->status ? p->status->message : NULL);
    s->start_ns = (int64_t)p->start_time_unix_nano;
    s->end_ns = (int64_t)p->end_time_unix_nano;
    s->name = str_of(p->name);
    s->trace_state = str_of(p->trace_state);
    s->dropped_attrs = p->dropped_attributes_count;
    if (conv_attrs(a, p->attributes, p->n_attributes, &s->attrs, &s->nattrs, &s->dropped_attrs))
        return VG_ENOMEM;
    s->dropped_events = p->dropped_events_count;
    s->dropped_links = p->dropped_links_count;
    struct span_event *ev = p->n_events ? vg_arena_alloc(a, p->n_events * sizeof *ev) : NULL;
    struct span_link *ln = p->n_links ? vg_arena_alloc(a, p->n_links * sizeof *ln) : NULL;
    if ((p->n_events && !ev) || (p->n_links && !ln))
        return VG_ENOMEM;
    s->events = ev;
    s->links = ln;
    for (size_t i = 0; i < p->n_events; i++) {
        const pb_event *e = p->events[i];
        if (!e)
            continue;
        if ((*reject = otlp_traces_check_event(i, e->time_unix_nano, why, cap)) >= 0)
            return 0;
        struct span_event *o = &ev[s->nevents++];
        memset(o, 0, sizeof *o);
        o->time_ns = (int64_t)e->time_unix_nano;
        o->name = str_of(e->name);
        o->dropped_attrs = e->dropped_attributes_count;
        if (conv_attrs(a, e->attributes, e->n_attributes, &o->attrs, &o->nattrs,
                       &o->dropped_attrs))
            return VG_ENOMEM;
    }
    for (size_t i = 0; i < p->n_links; i++) {
        const pb_link *l = p->links[i];
        if (!l)
            continue;
        struct span_link *o = &ln[s->nlinks++];
        memset(o, 0, sizeof *o);
        if ((*reject = otlp_traces_check_link(i, l->trace_id.len, l->span_id.len, why, cap)) >=
            0)
            return 0;
        memcpy(o->trace_id, l->trace_id.data, SPAN_TRACE_ID_LEN);
        memcpy(o->span_id, l->span_id.data, SPAN_ID_LEN);
        o->trace_state = str_of(l->trace_state);
        o->flags = l->flags;
        o->dropped_attrs = l->dropped_attributes_count;
        if (conv_attrs(a, l->attributes, l->n_attributes, &o->attrs, &o->nattrs,
                       &o->dropped_attrs))
            return VG_ENOMEM;
    }
    *reject = otlp_traces_check(cfg, s, NULL, why, cap);
    return 0;
}

struct vg_str otlp_traces_service_of(const struct span_attr *at, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (at[i].type == SPAN_VAL_STRING && vg_str_eq(at[i].key, VG_STR("service.name")))
            return at[i].v.s;
    return VG_STR("");
}

static void span_path(char *where, size_t cap, size_t i, size_t j, size_t k)
{
    snprintf(where, cap, "resourceSpans[%zu].scopeSpans[%zu].spans[%zu]", i, j, k);
}

void otlp_traces_refuse_at(struct otlp_traces_result *res, size_t i, size_t j, size_t k,
                           int reject, const char *why)
{
    char where[128], full[128 + 256 + 2];
    span_path(where, sizeof where, i, j, k);
    snprintf(full, sizeof full, "%s: %s", where, why);
    otlp_traces_refuse(res, (enum otlp_traces_reject)reject, full);
}

void otlp_traces_refuse_limit(struct otlp_traces_result *res, size_t i, size_t j, size_t k,
                              size_t total, size_t max)
{
    char where[128], why[256];
    span_path(where, sizeof where, i, j, k);
    refuse_fmt(why, sizeof why, where, 0,
               "the request holds %zu spans, more than the limit of %zu "
               "(traces.max_spans_per_request)",
               total, max);
    otlp_traces_refuse(res, OTLP_TRACES_REJECT_SPAN_LIMIT, why);
}

int otlp_traces_translate(const otlp_traces_request *req, const struct config *cfg,
                          struct vg_arena *a, struct otlp_traces_result *res,
                          struct vg_err *err)
{
    size_t total = 0;
    for (size_t i = 0; i < req->n_resource_spans; i++) {
        const pb_rs *rs = req->resource_spans[i];
        for (size_t j = 0; rs && j < rs->n_scope_spans; j++)
            total += rs->scope_spans[j] ? rs->scope_spans[j]->n_spans : 0;
    }
    size_t max = (size_t)cfg->traces_max_spans_per_request;
    if (otlp_traces_result_init(res, total < max ? total : max, a, err) < 0)
        return VG_ENOMEM;
    char why[256];
    for (size_t i = 0; i < req->n_resource_spans; i++) {
        const pb_rs *rs = req->resource_spans[i];
        if (!rs)
            continue;
        struct span base;
        memset(&base, 0, sizeof base);
        const pb_resource *r = rs->resource;
        if (r) {
            base.dropped_resource_attrs = r->dropped_attributes_count;
            if (conv_attrs(a, r->attributes, r->n_attributes, &base.resource_attrs,
                           &base.nresource_attrs, &base.dropped_resource_attrs))
                goto oom;
            base.service = otlp_traces_service_of(base.resource_attrs, base.nresource_attrs);
        }
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            const pb_ss *ss = rs->scope_spans[j];
            if (!ss)
                continue;
            const pb_scope *sc = ss->scope;
            base.scope_name = str_of(sc ? sc->name : NULL);
            base.scope_version = str_of(sc ? sc->version : NULL);
            base.scope_attrs = NULL;
            base.nscope_attrs = 0;
            if (sc && conv_attrs(a, sc->attributes, sc->n_attributes, &base.scope_attrs,
                                 &base.nscope_attrs, NULL))
                goto oom;
            for (size_t k = 0; k < ss->n_spans; k++) {
                if (!ss->spans[k])
                    continue;
                res->received++;
                /* The span's path is formatted only for a refusal (snprintf per span
                 * was 3% of the ingest path). */
                if (res->received > max) {
                    otlp_traces_refuse_limit(res, i, j, k, total, max);
                    continue;
                }
                struct span *s = &res->spans[res->n];
                *s = base;
                int reject;
                if (conv_span(cfg, a, ss->spans[k], s, &reject, why, sizeof why) < 0)
                    goto oom;
                if (reject >= 0)
                    otlp_traces_refuse_at(res, i, j, k, reject, why);
                else
                    res->n++;
            }
        }
    }
    return 0;
oom:
    return vg_err_set(err, VG_ENOMEM, "out of memory translating the spans of a request");
}

/* ---- span -> OTLP ---- */

struct rev {
    struct vg_arena *a;
    bool oom;
};

static void *rcalloc(struct rev *r, size_t n)
{
    void *p = vg_arena_calloc(r->a, n ? n : 1);
    if (!p)
        r->oom = true;
    return p;
}

static char *rstr(struct rev *r, struct vg_str s)
{
    if (!s.len)
        return (char *)"";
    char *p = vg_arena_strndup(r->a, s.p, s.len);
    if (!p)
        r->oom = true;
    return p ? p : (char *)"";
}

/* A stored array or key/value list back as its message; NULL when it does not decode. */
static void *unpack_blob(struct rev *r, const ProtobufCMessageDescriptor *d, struct vg_str s)
{
    if (pb_check_depth(d, (const uint8_t *)s.p, s.len, PB_MAX_DEPTH, NULL) < 0)
        return NULL;
    ProtobufCAllocator al;
    pb_alloc_from_arena(r->a, &al);
    return protobuf_c_message_unpack(d, &al, s.len, (const uint8_t *)s.p);
}

static pb_any *rev_value(struct rev *r, const struct span_attr *at)
{
    pb_any *v = rcalloc(r, sizeof *v);
    if (!v)
        return NULL;
    opentelemetry__proto__common__v1__any_value__init(v);
    switch (at->type) {
    case SPAN_VAL_STRING:
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        v->string_value = rstr(r, at->v.s);
        break;
    case SPAN_VAL_INT:
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
        v->int_value = at->v.i;
        break;
    case SPAN_VAL_DOUBLE:
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
        v->double_value = at->v.d;
        break;
    case SPAN_VAL_BOOL:
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
        v->bool_value = at->v.b;
        break;
    case SPAN_VAL_BYTES:
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE;
        v->bytes_value.data = (uint8_t *)at->v.s.p;
        v->bytes_value.len = at->v.s.len;
        break;
    case SPAN_VAL_ARRAY:
        v->array_value =
            unpack_blob(r, &opentelemetry__proto__common__v1__array_value__descriptor, at->v.s);
        if (v->array_value)
            v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
        break;
    case SPAN_VAL_MAP:
        v->kvlist_value = unpack_blob(
            r, &opentelemetry__proto__common__v1__key_value_list__descriptor, at->v.s);
        if (v->kvlist_value)
            v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
        break;
    }
    return v;
}

static pb_kv **rev_attrs(struct rev *r, const struct span_attr *at, size_t n, size_t *nout)
{
    *nout = 0;
    if (!n)
        return NULL;
    pb_kv **out = rcalloc(r, n * sizeof *out);
    pb_kv *kv = rcalloc(r, n * sizeof *kv);
    if (!out || !kv)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        opentelemetry__proto__common__v1__key_value__init(&kv[i]);
        kv[i].key = rstr(r, at[i].key);
        kv[i].value = rev_value(r, &at[i]);
        out[i] = &kv[i];
    }
    *nout = n;
    return out;
}

static pb_span *rev_span(struct rev *r, const struct span *s)
{
    pb_span *p = rcalloc(r, sizeof *p);
    if (!p)
        return NULL;
    opentelemetry__proto__trace__v1__span__init(p);
    p->trace_id = (ProtobufCBinaryData){ SPAN_TRACE_ID_LEN, (uint8_t *)s->trace_id };
    p->span_id = (ProtobufCBinaryData){ SPAN_ID_LEN, (uint8_t *)s->span_id };
    if (!span_is_root(s))
        p->parent_span_id = (ProtobufCBinaryData){ SPAN_ID_LEN, (uint8_t *)s->parent_span_id };
    p->trace_state = rstr(r, s->trace_state);
    p->flags = s->flags;
    p->name = rstr(r, s->name);
    p->kind = (Opentelemetry__Proto__Trace__V1__Span__SpanKind)s->kind;
    p->start_time_unix_nano = (uint64_t)s->start_ns;
    p->end_time_unix_nano = (uint64_t)s->end_ns;
    p->attributes = rev_attrs(r, s->attrs, s->nattrs, &p->n_attributes);
    p->dropped_attributes_count = s->dropped_attrs;
    p->dropped_events_count = s->dropped_events;
    p->dropped_links_count = s->dropped_links;
    if (s->status != SPAN_STATUS_UNSET || s->status_message.len) {
        pb_status *st = rcalloc(r, sizeof *st);
        if (!st)
            return NULL;
        opentelemetry__proto__trace__v1__status__init(st);
        st->code = (Opentelemetry__Proto__Trace__V1__Status__StatusCode)s->status;
        st->message = rstr(r, s->status_message);
        p->status = st;
    }
    if (s->nevents) {
        pb_event **ev = rcalloc(r, s->nevents * sizeof *ev);
        pb_event *e = rcalloc(r, s->nevents * sizeof *e);
        if (!ev || !e)
            return NULL;
        for (size_t i = 0; i < s->nevents; i++) {
            const struct span_event *in = &s->events[i];
            opentelemetry__proto__trace__v1__span__event__init(&e[i]);
            e[i].time_unix_nano = (uint64_t)in->time_ns;
            e[i].name = rstr(r, in->name);
            e[i].attributes = rev_attrs(r, in->attrs, in->nattrs, &e[i].n_attributes);
            e[i].dropped_attributes_count = in->dropped_attrs;
            ev[i] = &e[i];
        }
        p->events = ev;
        p->n_events = s->nevents;
    }
    if (s->nlinks) {
        pb_link **lv = rcalloc(r, s->nlinks * sizeof *lv);
        pb_link *l = rcalloc(r, s->nlinks * sizeof *l);
        if (!lv || !l)
            return NULL;
        for (size_t i = 0; i < s->nlinks; i++) {
            const struct span_link *in = &s->links[i];
            opentelemetry__proto__trace__v1__span__link__init(&l[i]);
            l[i].trace_id = (ProtobufCBinaryData){ SPAN_TRACE_ID_LEN, (uint8_t *)in->trace_id };
            l[i].span_id = (ProtobufCBinaryData){ SPAN_ID_LEN, (uint8_t *)in->span_id };
            l[i].trace_state = rstr(r, in->trace_state);
            l[i].flags = in->flags;
            l[i].attributes = rev_attrs(r, in->attrs, in->nattrs, &l[i].n_attributes);
            l[i].dropped_attributes_count = in->dropped_attrs;
            lv[i] = &l[i];
        }
        p->links = lv;
        p->n_links = s->nlinks;
    }
    return p;
}

static bool attr_eq(const struct span_attr *x, const struct span_attr *y)
{
    if (x->type != y->type || !vg_str_eq(x->key, y->key))
        return false;
    switch (x->type) {
    case SPAN_VAL_INT: return x->v.i == y->v.i;
    case SPAN_VAL_DOUBLE: /* NaN equals NaN here: the same attribute twice */
        return x->v.d == y->v.d || (x->v.d != x->v.d && y->v.d != y->v.d);
    case SPAN_VAL_BOOL: return x->v.b == y->v.b;
    default: return vg_str_eq(x->v.s, y->v.s);
    }
}

static bool attrs_eq(const struct span_attr *x, size_t nx, const struct span_attr *y, size_t ny)
{
    if (nx != ny)
        return false;
    for (size_t i = 0; i < nx; i++)
        if (!attr_eq(&x[i], &y[i]))
            return false;
    return true;
}

static bool same_resource(const struct span *x, const struct span *y)
{
    return vg_str_eq(x->service, y->service) &&
           x->dropped_resource_attrs == y->dropped_resource_attrs &&
           attrs_eq(x->resource_attrs, x->nresource_attrs, y->resource_attrs, y->nresource_attrs);
}

static bool same_scope(const struct span *x, const struct span *y)
{
    return vg_str_eq(x->scope_name, y->scope_name) &&
           vg_str_eq(x->scope_version, y->scope_version) &&
           attrs_eq(x->scope_attrs, x->nscope_attrs, y->scope_attrs, y->nscope_attrs);
}

static pb_rs *rev_resource(struct rev *r, const struct span *s, size_t nscopes)
{
    pb_rs *rs = rcalloc(r, sizeof *rs);
    pb_resource *res = rcalloc(r, sizeof *res);
    pb_ss **ss = rcalloc(r, nscopes * sizeof *ss);
    if (!rs || !res || !ss)
        return NULL;
    opentelemetry__proto__trace__v1__resource_spans__init(rs);
    opentelemetry__proto__resource__v1__resource__init(res);
    res->attributes = rev_attrs(r, s->resource_attrs, s->nresource_attrs, &res->n_attributes);
    res->dropped_attributes_count = s->dropped_resource_attrs;
    rs->resource = res;
    rs->scope_spans = ss;
    return rs;
}

static pb_ss *rev_scope(struct rev *r, const struct span *s, size_t nspans)
{
    pb_ss *ss = rcalloc(r, sizeof *ss);
    pb_scope *sc = rcalloc(r, sizeof *sc);
    pb_span **spans = rcalloc(r, nspans * sizeof *spans);
    if (!ss || !sc || !spans)
        return NULL;
    opentelemetry__proto__trace__v1__scope_spans__init(ss);
    opentelemetry__proto__common__v1__instrumentation_scope__init(sc);
    sc->name = rstr(r, s->scope_name);
    sc->version = rstr(r, s->scope_version);
    sc->attributes = rev_attrs(r, s->scope_attrs, s->nscope_attrs, &sc->n_attributes);
    ss->scope = sc;
    ss->spans = spans;
    return ss;
}

int otlp_traces_from_spans(const struct span *spans, size_t n, struct vg_arena *a,
                           otlp_traces_request **out, struct vg_err *err)
{
    struct rev r = { a, false };
    *out = NULL;
    otlp_traces_request *req = rcalloc(&r, sizeof *req);
    /* Per span its scope group; per group its first span, resource group and size. */
    size_t *sg = rcalloc(&r, n * sizeof *sg);
    size_t *rfirst = rcalloc(&r, n * sizeof *rfirst), *rscopes = rcalloc(&r, n * sizeof *rscopes);
    size_t *sfirst = rcalloc(&r, n * sizeof *sfirst), *sparent = rcalloc(&r, n * sizeof *sparent);
    size_t *scount = rcalloc(&r, n * sizeof *scount);
    if (r.oom)
        goto oom;
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(req);
    size_t nr = 0, ns = 0;
    for (size_t i = 0; i < n; i++) {
        size_t g = 0, h = 0;
        while (g < nr && !same_resource(&spans[rfirst[g]], &spans[i]))
            g++;
        if (g == nr)
            rfirst[nr++] = i;
        while (h < ns && !(sparent[h] == g && same_scope(&spans[sfirst[h]], &spans[i])))
            h++;
        if (h == ns) {
            sfirst[ns] = i;
            sparent[ns++] = g;
            rscopes[g]++;
        }
        sg[i] = h;
        scount[h]++;
    }
    pb_rs **rss = rcalloc(&r, nr * sizeof *rss);
    pb_ss **sss = rcalloc(&r, ns * sizeof *sss);
    if (r.oom)
        goto oom;
    for (size_t g = 0; g < nr; g++)
        if (!(rss[g] = rev_resource(&r, &spans[rfirst[g]], rscopes[g])))
            goto oom;
    for (size_t h = 0; h < ns; h++) {
        if (!(sss[h] = rev_scope(&r, &spans[sfirst[h]], scount[h])))
            goto oom;
        pb_rs *rs = rss[sparent[h]];
        rs->scope_spans[rs->n_scope_spans++] = sss[h];
    }
    for (size_t i = 0; i < n; i++) {
        pb_ss *ss = sss[sg[i]];
        if (!(ss->spans[ss->n_spans++] = rev_span(&r, &spans[i])))
            goto oom;
    }
    if (r.oom)
        goto oom;
    req->resource_spans = rss;
    req->n_resource_spans = nr;
    *out = req;
    return 0;
oom:
    return vg_err_set(err, VG_ENOMEM, "out of memory building the OTLP form of %zu spans", n);
}

/* ---- receiver ---- */

/* Fills the partial success of the response; false when everything was stored. */
static bool partial(const struct otlp_traces_result *tr, const struct spanstore_write_result *st,
                    pb_partial *ps, char *msg, size_t cap)
{
    uint64_t rejected = tr->rejected + st->rejected;
    if (!rejected)
        return false;
    int n = 0;
    if (tr->rejected)
        n = snprintf(msg, cap, "%llu of %llu spans rejected; first: %s",
                     (unsigned long long)tr->rejected, (unsigned long long)tr->received,
                     tr->reason);
    if (st->rejected && n >= 0 && (size_t)n < cap)
        snprintf(msg + n, cap - (size_t)n, "%s%llu spans refused by the store; first: %s",
                 n ? "; " : "", (unsigned long long)st->rejected, st->first_reject);
    ps->rejected_spans = (int64_t)rejected;
    ps->error_message = msg;
    return true;
}

int otlp_traces_decode(const struct config *cfg, const void *body, size_t len, bool json,
                       struct vg_arena *a, struct otlp_traces_result *tr, struct vg_err *err)
{
    size_t outer = otlp_receiver_cap_arena(cfg, a, OTLP_TRACES_ARENA_FACTOR);
    size_t cap = vg_arena_get_limit(a), before = vg_arena_used(a);
    bool capped = cap != 0;
    ProtobufCMessage *m;
    memset(tr, 0, sizeof *tr);
    if (!json && otlp_traces_pb_read(cfg, body, len, a, tr) == 0) {
        vg_arena_set_limit(a, outer);
        return 0;
    }
    /* The one-pass reader declined: protobuf-c decides, with the room it would have had. */
    if (capped)
        vg_arena_set_limit(a, cap + (vg_arena_used(a) - before));
    memset(tr, 0, sizeof *tr);
    int rc = otlp_receiver_decode(REQ_DESC, body, len, json, a, OTLP_TRACES_ARENA_FACTOR, &m,
                                  err);
    if (rc == 0)
        rc = otlp_traces_translate((const otlp_traces_request *)m, cfg, a, tr, err);
    vg_arena_set_limit(a, outer);
    return otlp_receiver_cap_or_nomem(rc, capped, OTLP_TRACES_ARENA_FACTOR, err);
}

int otlp_traces_export(struct vigil *v, const char *receiver, const void *body, size_t len,
                       bool json, struct vg_arena *a, struct vg_buf *out, struct vg_err *err)
{
    struct otlp_traces_result tr;
    int rc = otlp_traces_decode(v->cfg, body, len, json, a, &tr, err);
    if (rc < 0) {
        vg_complain(&complain_invalid, 60000, VG_LOG_WARN, receiver,
                    "rejected an OTLP traces request", err->msg);
        return rc;
    }
    otlp_traces_count_refused(v, receiver, &tr);
    struct spanstore_write_result st;
    memset(&st, 0, sizeof st);
    if (tr.n) {
        rc = ingest_store_spans(v, receiver, tr.spans, tr.n, &st, err);
        if (rc < 0) {
            vg_complain(&complain_storage, 10000, VG_LOG_ERROR, receiver,
                        "storing an OTLP traces request failed", err->msg);
            return rc;
        }
    }
    pb_resp resp = OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
    pb_partial ps = OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_PARTIAL_SUCCESS__INIT;
    char msg[768];
    if (partial(&tr, &st, &ps, msg, sizeof msg)) {
        resp.partial_success = &ps;
        vg_complain(&complain_partial, 60000, VG_LOG_WARN, receiver,
                    "stored part of an OTLP traces request", msg);
    }
    return otlp_receiver_encode(&resp.base, json, out, err);
}

static void handle_http(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    otlp_receiver_http(v, req, resp, RECV_HTTP, "OTLP/HTTP traces", otlp_traces_export);
}

/* gRPC calls decode into an arena kept per thread (otlp_receiver_grpc makes a fresh one
 * per call): at 100 spans a request needs about two 64 KiB blocks, and allocating and
 * freeing them on every call made glibc grow and trim the heap top each time, a page
 * fault per 4 KiB touched. Kept: one block of GRPC_ARENA_BLOCK, emptied after each call;
 * an arena that kept more (its first allocation was a big dedicated block) is freed.
 * The request's arena cap (otlp_traces_decode) counts from the arena's size on entry,
 * so the kept empty block adds at most GRPC_ARENA_BLOCK of room to it.
 * Measured (bench/spangen --preencode, 1M spans over gRPC from 4 connections, the gRPC
 * worker gate in place, spanstore_write stubbed out in a private copy for profiling;
 * server CPU and minor faults from /proc/PID/stat until idle, 2 rounds each in one
 * sitting): minor faults 12,900-15,000 -> 7,600-8,500, server CPU 0.43-0.52 s ->
 * 0.39-0.42 s per 1M spans. */
#define GRPC_ARENA_BLOCK ((size_t)64 * 1024)

static pthread_key_t grpc_arena_key;
static pthread_once_t grpc_arena_once = PTHREAD_ONCE_INIT;
static bool grpc_arena_key_ok;

static void grpc_arena_drop(void *a)
{
    vg_arena_free(a);
}

static void grpc_arena_key_init(void)
{
    grpc_arena_key_ok = pthread_key_create(&grpc_arena_key, grpc_arena_drop) == 0;
}

int otlp_traces_grpc_export(struct vigil *v, const unsigned char *req, size_t len,
                            struct vg_buf *resp, struct vg_err *err)
{
    pthread_once(&grpc_arena_once, grpc_arena_key_init);
    if (!grpc_arena_key_ok)
        return otlp_receiver_grpc(v, RECV_GRPC, otlp_traces_export, req, len, resp, err);
    struct vg_arena *a = pthread_getspecific(grpc_arena_key);
    if (!a && (a = vg_arena_new(GRPC_ARENA_BLOCK)) && pthread_setspecific(grpc_arena_key, a)) {
        vg_arena_free(a);
        a = NULL;
    }
    int rc;
    if (!a) {
        rc = vg_err_set(err, VG_ENOMEM, "out of memory");
    } else {
        rc = otlp_traces_export(v, RECV_GRPC, req, len, false, a, resp, err);
        vg_arena_reset(a);
        vg_arena_set_limit(a, 0);
        if (vg_arena_used(a) > GRPC_ARENA_BLOCK) {
            pthread_setspecific(grpc_arena_key, NULL);
            vg_arena_free(a);
        }
    }
    ingest_count_request(v, RECV_GRPC, grpc_status_for(rc));
    return rc;
}

static const struct http_route routes[] = {
    { "POST", "/v1/traces", false, handle_http, "/v1/traces" },
};

static const struct grpc_method methods[] = {
    { "/opentelemetry.proto.collector.trace.v1.TraceService/Export", otlp_traces_grpc_export },
};

const struct vigil_module mod_otlp_traces = {
    .name = "otlp_traces",
    .routes = routes,
    .nroutes = sizeof routes / sizeof routes[0],
    .grpc_methods = methods,
    .ngrpc = sizeof methods / sizeof methods[0],
};
