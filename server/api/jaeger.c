/* jaeger: see jaeger.h. Parameters are read here, searches run through the span store
 * (spanstore_search picks the index), and traces are written straight from the store's
 * span model into Jaeger's JSON, following what Jaeger's OTLP translator
 * (opentelemetry-collector-contrib pkg/translator/jaeger) makes of an OTLP span. */
#include "jaeger.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/spanstore/spanstore.h"
#include "../../storage/tsdb/matcher.h"
#include "../ingest/otlp_names.h"
#include "../ingest/otlp_traces.h"
#include "../pb_alloc.h"
#include "../traceql/lexer.h"
#include "trace_json.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PREFIX "/jaeger/api"
#define SERVICES_PREFIX PREFIX "/services/"
#define TRACES_PREFIX PREFIX "/traces/"
#define NO_SERVICE "OTLPResourceNoServiceName"
#define HOUR_NS ((int64_t)3600 * 1000000000)
#define MAX_TRACE_IDS 100 /* traceID parameters one search reads */
#define SCRATCH_BYTES ((size_t)16 * 1024)

static const char *const kind_names[] = {
    [SPAN_KIND_UNSPECIFIED] = "", [SPAN_KIND_INTERNAL] = "internal",
    [SPAN_KIND_SERVER] = "server", [SPAN_KIND_CLIENT] = "client",
    [SPAN_KIND_PRODUCER] = "producer", [SPAN_KIND_CONSUMER] = "consumer",
};

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* ---- tags ---- */

static int add_tag(struct vg_arena *a, const char *k, size_t kn, const char *v, size_t vn,
                   struct jaeger_tag *out, size_t max, size_t *nout, struct vg_err *err)
{
    if (!kn)
        return vg_err_set(err, VG_EINVAL, "malformed tags: empty key");
    char *kc = vg_arena_strndup(a, k, kn), *vc = vg_arena_strndup(a, v, vn);
    if (!kc || !vc)
        return vg_err_set(err, VG_ENOMEM, "out of memory reading tags");
    struct jaeger_tag t = { { kc, kn }, { vc, vn } };
    for (size_t i = 0; i < *nout; i++)
        if (vg_str_eq(out[i].key, t.key)) {
            out[i] = t;
            return 0;
        }
    if (*nout >= max)
        return vg_err_set(err, VG_ETOOLARGE, "too many tags: at most %zu", max);
    out[(*nout)++] = t;
    return 0;
}

/* A JSON map of scalars; numbers and bools count as their JSON text. */
static int tags_json(const char *s, size_t n, struct vg_arena *a, struct jaeger_tag *out,
                     size_t max, size_t *nout, struct vg_err *err)
{
    json_error_t je;
    json_t *o = json_loadb(s, n, 0, &je);
    int rc = 0;
    if (!json_is_object(o))
        rc = vg_err_set(err, VG_EINVAL, "malformed 'tags' parameter, cannot unmarshal JSON: "
                        "%s", o ? "not an object" : je.text);
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        if (rc)
            break;
        char num[64];
        const char *txt = num;
        size_t tn;
        if (json_is_string(v)) {
            txt = json_string_value(v);
            tn = json_string_length(v);
        } else if (json_is_integer(v)) {
            tn = (size_t)snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        } else if (json_is_real(v)) {
            struct vg_buf b;
            vg_buf_init(&b);
            vg_buf_json_float(&b, json_real_value(v));
            tn = vg_buf_failed(&b) || b.len >= sizeof num ? 0 : b.len;
            memcpy(num, b.p ? b.p : "", tn);
            vg_buf_free(&b);
        } else if (json_is_boolean(v)) {
            txt = json_is_true(v) ? "true" : "false";
            tn = strlen(txt);
        } else {
            rc = vg_err_set(err, VG_EINVAL, "malformed 'tags' parameter: the value of "
                            "\"%.64s\" must be a string", k);
            break;
        }
        rc = add_tag(a, k, strlen(k), txt, tn, out, max, nout, err);
    }
    json_decref(o);
    return rc;
}

int jaeger_parse_tags(const char *s, size_t n, enum jaeger_tags_form form, struct vg_arena *a,
                      struct jaeger_tag *out, size_t max, size_t *nout, struct vg_err *err)
{
    const char *e = s + n;
    if (form == JAEGER_TAG_PAIR) {
        const char *colon = memchr(s, ':', n);
        if (!colon)
            return vg_err_set(err, VG_EINVAL, "malformed 'tag' parameter, expecting "
                              "key:value, received: %.*s", (int)(n > 64 ? 64 : n), s);
        return add_tag(a, s, (size_t)(colon - s), colon + 1, (size_t)(e - colon - 1), out,
                       max, nout, err);
    }
    while (s < e && is_space(*s))
        s++;
    if (s < e && *s == '{')
        return tags_json(s, (size_t)(e - s), a, out, max, nout, err);
    while (s < e) {
        if (is_space(*s) || *s == ',') {
            s++;
            continue;
        }
        const char *k = s;
        while (s < e && *s != ':' && *s != '=' && !is_space(*s) && *s != ',')
            s++;
        if (s == e || (*s != ':' && *s != '='))
            return vg_err_set(err, VG_EINVAL, "malformed 'tags' parameter: \"%.*s\" is not "
                              "key:value", (int)(s - k > 64 ? 64 : s - k), k);
        size_t kn = (size_t)(s - k);
        s++;
        if (s < e && *s == '"') {
            /* quoted: backslash escapes the next byte; unescaped into a copy */
            char *buf = vg_arena_alloc(a, (size_t)(e - s) + 1);
            if (!buf)
                return vg_err_set(err, VG_ENOMEM, "out of memory reading tags");
            size_t bn = 0;
            for (s++; s < e && *s != '"'; s++) {
                if (*s == '\\' && s + 1 < e)
                    s++;
                buf[bn++] = *s;
            }
            if (s == e)
                return vg_err_set(err, VG_EINVAL, "malformed 'tags' parameter: unterminated "
                                  "quote in the value of \"%.*s\"", (int)(kn > 64 ? 64 : kn), k);
            s++;
            int rc = add_tag(a, k, kn, buf, bn, out, max, nout, err);
            if (rc)
                return rc;
            continue;
        }
        const char *v = s;
        while (s < e && !is_space(*s) && *s != ',')
            s++;
        int rc = add_tag(a, k, kn, v, (size_t)(s - v), out, max, nout, err);
        if (rc)
            return rc;
    }
    return 0;
}

int jaeger_parse_duration(const char *s, size_t n, int64_t *ns)
{
    if (n >= 2 && n < 32 && (s[n - 1] == 'd' || s[n - 1] == 'w')) {
        char buf[32];
        size_t digits = 0, dots = 0;
        for (size_t i = 0; i + 1 < n; i++) {
            if (s[i] >= '0' && s[i] <= '9')
                digits++;
            else if (s[i] == '.')
                dots++;
            else
                return traceql_parse_duration(s, n, ns);
        }
        if (!digits || dots > 1)
            return -1;
        memcpy(buf, s, n - 1);
        buf[n - 1] = '\0';
        double x = strtod(buf, NULL) * 86400e9 * (s[n - 1] == 'w' ? 7 : 1);
        if (!(x < 9.2e18))
            return -1;
        *ns = (int64_t)x;
        return 0;
    }
    return traceql_parse_duration(s, n, ns);
}

/* ---- the trace model ---- */

static void put_trace_id(struct vg_buf *b, const uint8_t *id)
{
    static const uint8_t zero[8];
    bool short_id = !memcmp(id, zero, 8);
    trace_json_hex(b, short_id ? id + 8 : id, short_id ? 8 : 16, false);
}

static void put_key_type(struct vg_buf *b, const char *key, size_t klen, const char *type)
{
    vg_buf_puts(b, "{\"key\":");
    vg_buf_json_str(b, key ? key : "", klen);
    vg_buf_printf(b, ",\"type\":\"%s\",\"value\":", type);
}

static void put_tag_str(struct vg_buf *b, const char *key, struct vg_str v)
{
    put_key_type(b, key, strlen(key), "string");
    vg_buf_json_str(b, v.p ? v.p : "", v.len);
    vg_buf_putc(b, '}');
}

/* The text OpenTelemetry's AsString gives a bytes, array or map value (base64 or JSON),
 * through the shared writer of the OTLP receiver. False when a stored blob does not
 * unpack (the tag is then left out). */
static bool blob_text(const struct span_attr *at, struct vg_arena *a, struct vg_buf *tmp)
{
    Opentelemetry__Proto__Common__V1__AnyValue v;
    opentelemetry__proto__common__v1__any_value__init(&v);
    const ProtobufCMessageDescriptor *d = NULL;
    if (at->type == SPAN_VAL_BYTES) {
        v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE;
        v.bytes_value.data = (uint8_t *)at->v.s.p;
        v.bytes_value.len = at->v.s.len;
    } else {
        d = at->type == SPAN_VAL_ARRAY
                ? &opentelemetry__proto__common__v1__array_value__descriptor
                : &opentelemetry__proto__common__v1__key_value_list__descriptor;
        if (pb_check_depth(d, (const uint8_t *)at->v.s.p, at->v.s.len, PB_MAX_DEPTH, NULL) < 0)
            return false;
        ProtobufCAllocator al;
        pb_alloc_from_arena(a, &al);
        ProtobufCMessage *m =
            protobuf_c_message_unpack(d, &al, at->v.s.len, (const uint8_t *)at->v.s.p);
        if (!m)
            return false;
        if (at->type == SPAN_VAL_ARRAY) {
            v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
            v.array_value = (Opentelemetry__Proto__Common__V1__ArrayValue *)m;
        } else {
            v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
            v.kvlist_value = (Opentelemetry__Proto__Common__V1__KeyValueList *)m;
        }
    }
    otlp_names_value(tmp, &v);
    return true;
}

/* A float64 value as Go's encoding/json writes it: plain decimals for 1e-6 <= |d| < 1e21,
 * else the shortest exponent form with at least one exponent digit ("1e+21", "1e-7"), so
 * that JSON readers which take an integer-looking number as an int64 do not overflow.
 * JSON has no NaN or infinities: those become the strings "NaN", "+Inf", "-Inf". */
static void put_float(struct vg_buf *b, double d)
{
    double m = fabs(d);
    if (!isfinite(d)) {
        vg_buf_putc(b, '"');
        vg_buf_json_float(b, d);
        vg_buf_putc(b, '"');
        return;
    }
    if (m == 0 || (m >= 1e-6 && m < 1e21)) {
        vg_buf_json_float(b, d);
        return;
    }
    size_t at = b->len;
    vg_buf_prom_float(b, d); /* strconv 'g': "1e-07" */
    char *e = vg_buf_failed(b) ? NULL : memchr(b->p + at, 'e', b->len - at);
    if (e && e[1] == '-' && e[2] == '0' && e + 3 < b->p + b->len) {
        memmove(e + 2, e + 3, (size_t)(b->p + b->len - (e + 3)));
        b->p[--b->len] = '\0';
    }
}

/* One attribute as a Jaeger tag, preceded by a comma unless first. */
static void put_attr(struct vg_buf *b, const struct span_attr *at, struct vg_arena *a,
                     bool *first)
{
    struct vg_buf tmp;
    const char *key = at->key.p;
    size_t kl = at->key.len;
    switch (at->type) {
    case SPAN_VAL_STRING:
    case SPAN_VAL_INT:
    case SPAN_VAL_DOUBLE:
    case SPAN_VAL_BOOL:
        break;
    default:
        vg_buf_init(&tmp);
        if (!blob_text(at, a, &tmp)) {
            vg_buf_free(&tmp);
            return;
        }
        if (!*first)
            vg_buf_putc(b, ',');
        *first = false;
        put_key_type(b, key, kl, at->type == SPAN_VAL_BYTES ? "binary" : "string");
        if (vg_buf_failed(&tmp))
            b->failed = true;
        vg_buf_json_str(b, tmp.p ? tmp.p : "", tmp.len);
        vg_buf_putc(b, '}');
        vg_buf_free(&tmp);
        return;
    }
    if (!*first)
        vg_buf_putc(b, ',');
    *first = false;
    switch (at->type) {
    case SPAN_VAL_STRING:
        put_key_type(b, key, kl, "string");
        vg_buf_json_str(b, at->v.s.p ? at->v.s.p : "", at->v.s.len);
        break;
    case SPAN_VAL_INT:
        put_key_type(b, key, kl, "int64");
        vg_buf_printf(b, "%" PRId64, at->v.i);
        break;
    case SPAN_VAL_DOUBLE:
        put_key_type(b, key, kl, "float64");
        put_float(b, at->v.d);
        break;
    default: /* SPAN_VAL_BOOL */
        put_key_type(b, key, kl, "bool");
        vg_buf_puts(b, at->v.b ? "true" : "false");
        break;
    }
    vg_buf_putc(b, '}');
}

static void put_attrs(struct vg_buf *b, const struct span_attr *at, size_t n,
                      struct vg_arena *a, bool *first, bool skip_service)
{
    for (size_t i = 0; i < n; i++)
        if (!skip_service || !vg_str_eq_c(at[i].key, "service.name"))
            put_attr(b, &at[i], a, first);
}

/* The synthetic tags come one after another; first marks the list's first element. */
static void put_synthetic(struct vg_buf *b, bool *first, const char *key, struct vg_str v)
{
    if (!*first)
        vg_buf_putc(b, ',');
    *first = false;
    put_tag_str(b, key, v);
}

static void put_span_tags(struct vg_buf *b, const struct span *s, struct vg_arena *a)
{
    bool first = true;
    vg_buf_puts(b, "\"tags\":[");
    if (s->scope_name.len)
        put_synthetic(b, &first, "otel.scope.name", s->scope_name);
    if (s->scope_version.len)
        put_synthetic(b, &first, "otel.scope.version", s->scope_version);
    put_attrs(b, s->attrs, s->nattrs, a, &first, false);
    if (s->kind != SPAN_KIND_UNSPECIFIED && (unsigned)s->kind <= SPAN_KIND_MAX)
        put_synthetic(b, &first, "span.kind", vg_str_c(kind_names[s->kind]));
    if (s->status == SPAN_STATUS_OK)
        put_synthetic(b, &first, "otel.status_code", VG_STR("OK"));
    if (s->status == SPAN_STATUS_ERROR) {
        put_synthetic(b, &first, "otel.status_code", VG_STR("ERROR"));
        vg_buf_puts(b, ",{\"key\":\"error\",\"type\":\"bool\",\"value\":true}");
    }
    if (s->status_message.len)
        put_synthetic(b, &first, "otel.status_description", s->status_message);
    if (s->trace_state.len)
        put_synthetic(b, &first, "w3c.tracestate", s->trace_state);
    vg_buf_putc(b, ']');
}

static void put_ref(struct vg_buf *b, const char *type, const uint8_t *tid, const uint8_t *sid)
{
    vg_buf_printf(b, "{\"refType\":\"%s\",\"traceID\":", type);
    put_trace_id(b, tid);
    vg_buf_puts(b, ",\"spanID\":");
    trace_json_hex(b, sid, SPAN_ID_LEN, false);
    vg_buf_putc(b, '}');
}

static void put_span(struct vg_buf *b, const struct span *s, unsigned proc, struct vg_arena *a)
{
    vg_buf_puts(b, "{\"traceID\":");
    put_trace_id(b, s->trace_id);
    vg_buf_puts(b, ",\"spanID\":");
    trace_json_hex(b, s->span_id, SPAN_ID_LEN, false);
    vg_buf_printf(b, ",\"flags\":%u,\"operationName\":", (unsigned)(s->flags & 0xff));
    vg_buf_json_str(b, s->name.p ? s->name.p : "", s->name.len);
    vg_buf_puts(b, ",\"references\":[");
    bool root = span_is_root(s);
    if (!root)
        put_ref(b, "CHILD_OF", s->trace_id, s->parent_span_id);
    for (size_t i = 0; i < s->nlinks; i++) {
        if (i || !root)
            vg_buf_putc(b, ',');
        put_ref(b, "FOLLOWS_FROM", s->links[i].trace_id, s->links[i].span_id);
    }
    vg_buf_printf(b, "],\"startTime\":%" PRId64 ",\"duration\":%" PRId64 ",", s->start_ns / 1000,
                  (s->end_ns - s->start_ns) / 1000);
    put_span_tags(b, s, a);
    vg_buf_puts(b, ",\"logs\":[");
    for (size_t i = 0; i < s->nevents; i++) {
        const struct span_event *ev = &s->events[i];
        bool first = true;
        vg_buf_printf(b, "%s{\"timestamp\":%" PRId64 ",\"fields\":[", i ? "," : "",
                      ev->time_ns / 1000);
        if (ev->name.len)
            put_synthetic(b, &first, "event", ev->name);
        put_attrs(b, ev->attrs, ev->nattrs, a, &first, false);
        vg_buf_puts(b, "]}");
    }
    vg_buf_printf(b, "],\"processID\":\"p%u\",\"warnings\":null}", proc);
}

/* ---- processes: one per distinct resource ---- */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *c = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ c[i]) * 1099511628211ULL;
    return h;
}

static uint64_t resource_hash(const struct span *s)
{
    uint64_t h = fnv(1469598103934665603ULL, s->service.p, s->service.len);
    for (size_t i = 0; i < s->nresource_attrs; i++) {
        const struct span_attr *at = &s->resource_attrs[i];
        h = fnv(h, at->key.p, at->key.len);
        h = fnv(h, &at->type, sizeof at->type);
        if (at->type == SPAN_VAL_INT || at->type == SPAN_VAL_DOUBLE)
            h = fnv(h, &at->v.i, sizeof at->v.i); /* the same 8 bytes for a double */
        else if (at->type == SPAN_VAL_BOOL)
            h = fnv(h, &at->v.b, 1);
        else
            h = fnv(h, at->v.s.p, at->v.s.len);
    }
    return h;
}

static bool attr_eq(const struct span_attr *x, const struct span_attr *y)
{
    if (x->type != y->type || !vg_str_eq(x->key, y->key))
        return false;
    switch (x->type) {
    case SPAN_VAL_INT:
    case SPAN_VAL_DOUBLE: return x->v.i == y->v.i; /* a double: the same bits, NaN included */
    case SPAN_VAL_BOOL: return x->v.b == y->v.b;
    default: return vg_str_eq(x->v.s, y->v.s);
    }
}

static bool resource_eq(const struct span *x, const struct span *y)
{
    if (!vg_str_eq(x->service, y->service) || x->nresource_attrs != y->nresource_attrs)
        return false;
    for (size_t i = 0; i < x->nresource_attrs; i++)
        if (!attr_eq(&x->resource_attrs[i], &y->resource_attrs[i]))
            return false;
    return true;
}

/* proc[i] = the process number (1-based) of spans[i]; reps[k] = the first span of
 * process k + 1. An open-addressing table over resource hashes keeps this linear. */
static size_t assign_processes(const struct span *spans, size_t n, struct vg_arena *a,
                               unsigned *proc, size_t *reps)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    size_t *slot = vg_arena_alloc(a, cap * sizeof *slot); /* 0 = empty, else rep index + 1 */
    uint64_t *hs = vg_arena_alloc(a, n * sizeof *hs);
    if (!slot || !hs)
        return 0;
    memset(slot, 0, cap * sizeof *slot);
    size_t np = 0;
    for (size_t i = 0; i < n; i++) {
        hs[i] = resource_hash(&spans[i]);
        size_t j = (size_t)hs[i] & (cap - 1);
        for (;; j = (j + 1) & (cap - 1)) {
            if (!slot[j]) {
                reps[np] = i;
                slot[j] = ++np;
                proc[i] = (unsigned)np;
                break;
            }
            size_t r = reps[slot[j] - 1];
            if (hs[r] == hs[i] && resource_eq(&spans[r], &spans[i])) {
                proc[i] = (unsigned)slot[j];
                break;
            }
        }
    }
    return np;
}

int jaeger_write_trace(const struct span *spans, size_t n, struct vg_arena *a,
                       struct vg_buf *out, struct vg_err *err)
{
    unsigned *proc = vg_arena_alloc(a, n * sizeof *proc);
    size_t *reps = vg_arena_alloc(a, n * sizeof *reps);
    size_t np = proc && reps ? assign_processes(spans, n, a, proc, reps) : 0;
    if (!np)
        return vg_err_set(err, VG_ENOMEM, "out of memory writing a trace");
    vg_buf_puts(out, "{\"traceID\":");
    put_trace_id(out, spans[0].trace_id);
    vg_buf_puts(out, ",\"spans\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            vg_buf_putc(out, ',');
        put_span(out, &spans[i], proc[i], a);
    }
    vg_buf_puts(out, "],\"processes\":{");
    for (size_t k = 0; k < np; k++) {
        const struct span *s = &spans[reps[k]];
        bool first = true;
        vg_buf_printf(out, "%s\"p%zu\":{\"serviceName\":", k ? "," : "", k + 1);
        if (s->service.len)
            vg_buf_json_str(out, s->service.p, s->service.len);
        else
            vg_buf_puts(out, "\"" NO_SERVICE "\"");
        vg_buf_puts(out, ",\"tags\":[");
        put_attrs(out, s->resource_attrs, s->nresource_attrs, a, &first, true);
        vg_buf_puts(out, "]}");
    }
    vg_buf_puts(out, "},\"warnings\":null}");
    if (vg_buf_failed(out))
        return vg_err_set(err, VG_ENOMEM, "out of memory writing a trace");
    return 0;
}

/* ---- responses ---- */

static void begin(struct http_response *resp)
{
    resp->content_type = "application/json";
    vg_buf_puts(&resp->body, "{\"data\":");
}

static void end(struct http_response *resp, size_t total)
{
    vg_buf_printf(&resp->body, ",\"total\":%zu,\"limit\":0,\"offset\":0,\"errors\":null}", total);
}

/* Jaeger's error shape, with the status for err's code. A body that could not be built
 * for want of memory is replaced by this one. */
static void fail(struct http_response *resp, const struct vg_err *err)
{
    int status = http_status_for(err->code);
    resp->status = status;
    resp->content_type = "application/json";
    vg_buf_reset(&resp->body);
    vg_buf_printf(&resp->body, "{\"data\":null,\"total\":0,\"limit\":0,\"offset\":0,"
                  "\"errors\":[{\"code\":%d,\"msg\":", status);
    vg_buf_json_str(&resp->body, err->msg, strlen(err->msg));
    vg_buf_puts(&resp->body, "}]}");
    if (err->code == VG_ENOMEM || err->code == VG_EIO)
        http_resp_header(resp, "Retry-After", "5");
}

/* Sends rc's error, or turns a failed body into one. */
static void finish(struct http_response *resp, int rc, struct vg_err *err)
{
    if (rc == 0 && vg_buf_failed(&resp->body))
        rc = vg_err_set(err, VG_ENOMEM, "out of memory writing the response");
    if (rc < 0)
        fail(resp, err);
    else
        resp->status = 200;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* An integer parameter in [0, max]; *out untouched when absent or empty. 1 when given. */
static int arg_int(const struct http_request *req, const char *key, int64_t max, int64_t *out,
                   struct vg_err *err)
{
    const char *s = http_arg_get(req, key);
    if (!s || !*s)
        return 0;
    char *e;
    errno = 0;
    long long v = strtoll(s, &e, 10);
    if (errno || *e || e == s || v < 0 || v > max)
        return vg_err_set(err, VG_EINVAL, "unable to parse param '%s': \"%.64s\" is not an "
                          "integer from 0 to %" PRId64, key, s, max);
    *out = v;
    return 1;
}

/* A duration parameter (>= 0); *ns untouched when absent or empty. */
static int arg_duration(const struct http_request *req, const char *key, int64_t *ns,
                        struct vg_err *err)
{
    const char *s = http_arg_get(req, key);
    int64_t v;
    if (!s || !*s)
        return 0;
    if (jaeger_parse_duration(s, strlen(s), &v) < 0 || v < 0)
        return vg_err_set(err, VG_EINVAL, "unable to parse param '%s': \"%.64s\" is not a "
                          "duration such as 100ms or 1.5s", key, s);
    *ns = v;
    return 1;
}

/* ---- services and operations ---- */

static void put_names(struct vg_buf *b, const struct vg_str *names, size_t n)
{
    vg_buf_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            vg_buf_putc(b, ',');
        vg_buf_json_str(b, names[i].p ? names[i].p : "", names[i].len);
    }
    vg_buf_putc(b, ']');
}

static void services(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    (void)req;
    struct vg_err err;
    vg_err_clear(&err);
    struct spanstore_list l = { 0 };
    int rc = spanstore_services(v->traces, 0, 0, &l, &err);
    if (rc == 0) {
        begin(resp);
        put_names(&resp->body, l.names, l.n);
        end(resp, l.n);
    }
    spanstore_list_free(&l);
    finish(resp, rc, &err);
}

/* Operations of a service; names_only: the legacy route's unique names. */
static void operations_of(struct vigil *v, struct vg_str service, const char *kind, bool names_only,
                          struct http_response *resp)
{
    struct vg_err err;
    vg_err_clear(&err);
    struct spanstore_list l = { 0 };
    int rc = spanstore_operations(v->traces, 0, 0, service, &l, &err);
    if (rc == 0) {
        size_t total = 0;
        begin(resp);
        vg_buf_putc(&resp->body, '[');
        for (size_t i = 0; i < l.n; i++) {
            const struct spanstore_op *op = &l.ops[i];
            const char *kn = (unsigned)op->kind <= SPAN_KIND_MAX ? kind_names[op->kind] : "";
            if (names_only && total && vg_str_eq(op->name, l.ops[i - 1].name))
                continue; /* the list is sorted by name, then kind */
            if (kind && *kind && strcmp(kind, kn) != 0)
                continue;
            vg_buf_puts(&resp->body, total++ ? "," : "");
            if (!names_only)
                vg_buf_puts(&resp->body, "{\"name\":");
            vg_buf_json_str(&resp->body, op->name.p ? op->name.p : "", op->name.len);
            if (!names_only)
                vg_buf_printf(&resp->body, ",\"spanKind\":\"%s\"}", kn);
        }
        vg_buf_putc(&resp->body, ']');
        end(resp, total);
    }
    spanstore_list_free(&l);
    finish(resp, rc, &err);
}

static void not_found(struct http_response *resp, const char *path)
{
    struct vg_err err;
    vg_err_set(&err, VG_ENOTFOUND, "no such endpoint: %.200s", path);
    fail(resp, &err);
}

/* /jaeger/api/services/<service>/operations */
static void service_operations(struct vigil *v, struct http_request *req,
                               struct http_response *resp)
{
    static const char suffix[] = "/operations";
    const char *s = req->path + strlen(SERVICES_PREFIX);
    size_t n = strlen(s), sl = sizeof suffix - 1;
    if (n <= sl || strcmp(s + n - sl, suffix) != 0) {
        not_found(resp, req->path);
        return;
    }
    operations_of(v, (struct vg_str){ s, n - sl }, NULL, true, resp);
}

static void operations(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    const char *service = http_arg_get(req, "service");
    if (!service || !*service) {
        struct vg_err err;
        vg_err_set(&err, VG_EINVAL, "parameter 'service' is required");
        fail(resp, &err);
        return;
    }
    operations_of(v, vg_str_c(service), http_arg_get(req, "spanKind"), false, resp);
}

/* ---- traces ---- */

/* Reads and writes one trace; VG_ENOTFOUND when it is not stored. scratch is reset. */
static int write_stored(struct vigil *v, const uint8_t *tid, struct vg_arena *scratch,
                        struct vg_buf *out, struct vg_err *err)
{
    struct spanstore_trace t = { 0 };
    int rc = spanstore_trace_get(v->traces, tid, &t, err);
    if (rc == 0 && !t.n)
        rc = VG_ENOTFOUND;
    if (rc == 0)
        rc = jaeger_write_trace(t.spans, t.n, scratch, out, err);
    spanstore_trace_free(&t);
    vg_arena_reset(scratch);
    if (rc == VG_ENOTFOUND)
        vg_err_set(err, VG_ENOTFOUND, "trace not found");
    return rc;
}

static void trace_by_id(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    struct vg_err err;
    vg_err_clear(&err);
    const char *id = req->path + strlen(TRACES_PREFIX);
    uint8_t tid[SPAN_TRACE_ID_LEN];
    struct vg_arena *scratch = NULL;
    int rc;
    if (!otlp_traces_parse_id(id, strlen(id), tid, sizeof tid))
        rc = vg_err_set(&err, VG_EINVAL, "invalid trace id \"%.64s\": expected 1 to 32 hex "
                        "digits", id);
    else if (!(scratch = vg_arena_new(SCRATCH_BYTES)))
        rc = vg_err_set(&err, VG_ENOMEM, "out of memory reading a trace");
    else {
        begin(resp);
        vg_buf_putc(&resp->body, '[');
        rc = write_stored(v, tid, scratch, &resp->body, &err);
        vg_buf_putc(&resp->body, ']');
        end(resp, 1);
    }
    vg_arena_free(scratch);
    finish(resp, rc, &err);
}

struct search {
    struct spanstore_query q;
    struct spanstore_attr_filter filters[JAEGER_MAX_TAGS];
    struct matcher *matchers[JAEGER_MAX_TAGS];
    size_t nfilters;
    bool impossible; /* contradictory tags: nothing can match */
};

static void search_free(struct search *s)
{
    for (size_t i = 0; i < s->nfilters; i++)
        matcher_free(s->matchers[i]);
}

static int kind_of(struct vg_str name)
{
    for (int k = SPAN_KIND_INTERNAL; k <= SPAN_KIND_MAX; k++)
        if (vg_str_eq_c(name, kind_names[k]))
            return k;
    return -1;
}

static void want(int *field, int value, bool *impossible)
{
    if (*field >= 0 && *field != value)
        *impossible = true;
    *field = value;
}

/* One tag as a filter: the synthetic tags map back to the span fields they come from. */
static int tag_filter(struct search *s, const struct jaeger_tag *t, struct vg_err *err)
{
    if (vg_str_eq_c(t->key, "error") && vg_str_eq_c(t->value, "true")) {
        want(&s->q.status, SPAN_STATUS_ERROR, &s->impossible);
        return 0;
    }
    if (vg_str_eq_c(t->key, "otel.status_code")) {
        bool ok = vg_str_eq_c(t->value, "OK"), error = vg_str_eq_c(t->value, "ERROR");
        if (ok || error)
            want(&s->q.status, ok ? SPAN_STATUS_OK : SPAN_STATUS_ERROR, &s->impossible);
        else
            s->impossible = true;
        return 0;
    }
    if (vg_str_eq_c(t->key, "span.kind")) {
        int k = kind_of(t->value);
        if (k < 0)
            s->impossible = true;
        else
            want(&s->q.kind, k, &s->impossible);
        return 0;
    }
    struct matcher *m = matcher_new(MATCH_EQ, t->key, t->value, err);
    if (!m)
        return err->code ? err->code : VG_ENOMEM;
    s->matchers[s->nfilters] = m;
    s->filters[s->nfilters++] = (struct spanstore_attr_filter){ SPANSTORE_SCOPE_ANY, m };
    return 0;
}

static int read_tags(struct http_request *req, struct search *s, struct vg_err *err)
{
    struct jaeger_tag tags[JAEGER_MAX_TAGS];
    size_t nt = 0;
    int rc = 0;
    for (size_t i = 0; !rc && i < req->nargs; i++) {
        const struct http_arg *a = &req->args[i];
        bool one = !strcmp(a->key, "tag");
        if (one || !strcmp(a->key, "tags"))
            rc = jaeger_parse_tags(a->value, strlen(a->value),
                                   one ? JAEGER_TAG_PAIR : JAEGER_TAGS_ANY, req->arena, tags,
                                   JAEGER_MAX_TAGS, &nt, err);
    }
    for (size_t i = 0; !rc && i < nt; i++)
        rc = tag_filter(s, &tags[i], err);
    s->q.attrs = s->filters;
    s->q.nattrs = s->nfilters;
    return rc;
}

/* start/end (µs) or lookback into the span start window of q. */
static int read_window(struct http_request *req, struct spanstore_query *q, struct vg_err *err)
{
    const int64_t max_us = INT64_MAX / 1000 - 1;
    int64_t end_us = now_ns() / 1000, start_us = -1, lookback = HOUR_NS;
    int rc = arg_int(req, "end", max_us, &end_us, err);
    if (rc >= 0)
        rc = arg_int(req, "start", max_us, &start_us, err);
    const char *lb = http_arg_get(req, "lookback");
    if (rc >= 0 && lb && *lb && strcmp(lb, "custom") != 0)
        rc = arg_duration(req, "lookback", &lookback, err);
    if (rc < 0)
        return rc;
    if (start_us < 0)
        start_us = end_us - lookback / 1000 > 0 ? end_us - lookback / 1000 : 0;
    q->from_ns = start_us * 1000;
    q->to_ns = end_us * 1000 + 999; /* end is inclusive of its microsecond */
    return 0;
}

static int read_search(struct http_request *req, struct search *s, struct vg_err *err)
{
    spanstore_query_init(&s->q);
    const char *service = http_arg_get(req, "service");
    const char *op = http_arg_get(req, "operation");
    int64_t limit = JAEGER_DEFAULT_LIMIT;
    int rc = read_window(req, &s->q, err);
    if (rc >= 0)
        rc = arg_int(req, "limit", INT32_MAX, &limit, err);
    if (rc >= 0)
        rc = arg_duration(req, "minDuration", &s->q.min_duration_ns, err);
    if (rc >= 0)
        rc = arg_duration(req, "maxDuration", &s->q.max_duration_ns, err);
    if (rc >= 0 && s->q.min_duration_ns && s->q.max_duration_ns &&
        s->q.max_duration_ns < s->q.min_duration_ns)
        rc = vg_err_set(err, VG_EINVAL, "'maxDuration' should be greater than 'minDuration'");
    if (rc >= 0 && (!service || !*service))
        rc = vg_err_set(err, VG_EINVAL, "parameter 'service' is required");
    if (rc >= 0)
        rc = read_tags(req, s, err);
    if (rc < 0)
        return rc;
    s->q.service = vg_str_c(service);
    s->q.span_name = vg_str_c(op ? op : "");
    s->q.limit = limit <= 0 ? JAEGER_DEFAULT_LIMIT
                            : (size_t)(limit > JAEGER_MAX_LIMIT ? JAEGER_MAX_LIMIT : limit);
    if (s->q.from_ns > s->q.to_ns)
        s->impossible = true;
    return 0;
}

/* search by traceID parameters: found traces in data, unknown ones in errors. */
static int search_ids(struct vigil *v, struct http_request *req, const char **ids, size_t nids,
                      struct vg_arena *scratch, struct http_response *resp, struct vg_err *err)
{
    struct vg_buf *b = &resp->body;
    bool *missing = vg_arena_calloc(req->arena, nids * sizeof *missing);
    uint8_t(*tids)[SPAN_TRACE_ID_LEN] = vg_arena_alloc(req->arena, nids * sizeof *tids);
    if (!missing || !tids)
        return vg_err_set(err, VG_ENOMEM, "out of memory reading traces");
    for (size_t i = 0; i < nids; i++)
        if (!otlp_traces_parse_id(ids[i], strlen(ids[i]), tids[i], SPAN_TRACE_ID_LEN))
            return vg_err_set(err, VG_EINVAL, "cannot parse traceID param: \"%.64s\" is not 1 "
                              "to 32 hex digits", ids[i]);
    size_t found = 0, nmissing = 0;
    begin(resp);
    vg_buf_putc(b, '[');
    for (size_t i = 0; i < nids; i++) {
        size_t mark = b->len;
        if (found)
            vg_buf_putc(b, ',');
        int rc = write_stored(v, tids[i], scratch, b, err);
        if (rc == VG_ENOTFOUND) {
            b->len = mark;
            missing[i] = true;
            nmissing++;
        } else if (rc < 0) {
            return rc;
        } else {
            found++;
        }
    }
    vg_buf_printf(b, "],\"total\":%zu,\"limit\":0,\"offset\":0,\"errors\":", found);
    if (!nmissing) {
        vg_buf_puts(b, "null}");
        return 0;
    }
    vg_buf_putc(b, '[');
    for (size_t i = 0, k = 0; i < nids; i++) {
        if (!missing[i])
            continue;
        vg_buf_puts(b, k++ ? ",{\"msg\":\"trace not found\",\"traceID\":"
                           : "{\"msg\":\"trace not found\",\"traceID\":");
        put_trace_id(b, tids[i]);
        vg_buf_putc(b, '}');
    }
    vg_buf_puts(b, "]}");
    return 0;
}

static void search_traces(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    struct vg_err err;
    vg_err_clear(&err);
    const char *ids[MAX_TRACE_IDS];
    size_t nids = http_arg_all(req, "traceID", ids, MAX_TRACE_IDS);
    struct vg_arena *scratch = vg_arena_new(SCRATCH_BYTES);
    struct search s;
    memset(&s, 0, sizeof s);
    struct spanstore_search_result r = { 0 };
    int rc = scratch ? 0 : vg_err_set(&err, VG_ENOMEM, "out of memory searching traces");
    if (!rc && nids > MAX_TRACE_IDS)
        rc = vg_err_set(&err, VG_ETOOLARGE, "too many traceID parameters: at most %d",
                        MAX_TRACE_IDS);
    else if (!rc && nids)
        rc = search_ids(v, req, ids, nids, scratch, resp, &err);
    else if (!rc && (rc = read_search(req, &s, &err)) == 0 &&
             (s.impossible || (rc = spanstore_search(v->traces, &s.q, &r, &err)) == 0)) {
        size_t total = 0;
        begin(resp);
        vg_buf_putc(&resp->body, '[');
        for (size_t i = 0; !rc && i < r.n; i++) {
            size_t mark = resp->body.len;
            if (total)
                vg_buf_putc(&resp->body, ',');
            rc = write_stored(v, r.traces[i].trace_id, scratch, &resp->body, &err);
            if (rc == VG_ENOTFOUND) { /* removed by retention since the search */
                resp->body.len = mark;
                rc = 0;
            } else if (rc == 0) {
                total++;
            }
        }
        vg_buf_putc(&resp->body, ']');
        end(resp, total);
    }
    spanstore_search_free(&r);
    search_free(&s);
    vg_arena_free(scratch);
    finish(resp, rc, &err);
}

/* ---- dependencies ---- */

struct link {
    struct vg_str parent, child; /* copies in the request arena */
    uint64_t calls, h;
};

struct links {
    struct link *v;   /* open addressing; parent.p NULL = empty */
    size_t cap, n;
    struct vg_arena *a;
};

static int link_add(struct links *ls, struct vg_str p, struct vg_str c)
{
    uint64_t h = fnv(fnv(1469598103934665603ULL, p.p, p.len), "\0", 1);
    h = fnv(h, c.p, c.len);
    for (size_t j = (size_t)h & (ls->cap - 1);; j = (j + 1) & (ls->cap - 1)) {
        struct link *l = &ls->v[j];
        if (!l->parent.p) {
            if (ls->n >= JAEGER_DEP_MAX_LINKS)
                return 0; /* the table is 2x this: a free slot always exists */
            char *pc = vg_arena_strndup(ls->a, p.p ? p.p : "", p.len);
            char *cc = vg_arena_strndup(ls->a, c.p ? c.p : "", c.len);
            if (!pc || !cc)
                return VG_ENOMEM;
            *l = (struct link){ { pc, p.len }, { cc, c.len }, 1, h };
            ls->n++;
            return 0;
        }
        if (l->h == h && vg_str_eq(l->parent, p) && vg_str_eq(l->child, c)) {
            l->calls++;
            return 0;
        }
    }
}

static int cmp_span_id(const void *x, const void *y)
{
    const struct span *a = *(const struct span *const *)x, *b = *(const struct span *const *)y;
    return memcmp(a->span_id, b->span_id, SPAN_ID_LEN);
}

static struct vg_str service_or_default(const struct span *s)
{
    return s->service.len ? s->service : VG_STR(NO_SERVICE);
}

/* Counts the cross-service parent -> child edges of one trace. */
static int trace_links(const struct spanstore_trace *t, struct vg_arena *scratch,
                       struct links *ls)
{
    const struct span **by_id = vg_arena_alloc(scratch, t->n * sizeof *by_id);
    if (!by_id)
        return VG_ENOMEM;
    for (size_t i = 0; i < t->n; i++)
        by_id[i] = &t->spans[i];
    qsort(by_id, t->n, sizeof *by_id, cmp_span_id);
    for (size_t i = 0; i < t->n; i++) {
        const struct span *s = &t->spans[i];
        if (span_is_root(s))
            continue;
        struct span key;
        memcpy(key.span_id, s->parent_span_id, SPAN_ID_LEN);
        const struct span *kp = &key;
        const struct span **pp = bsearch(&kp, by_id, t->n, sizeof *by_id, cmp_span_id);
        if (!pp)
            continue;
        struct vg_str ps = service_or_default(*pp), cs = service_or_default(s);
        if (!vg_str_eq(ps, cs) && link_add(ls, ps, cs) < 0)
            return VG_ENOMEM;
    }
    return 0;
}

static int cmp_link(const void *x, const void *y)
{
    const struct link *a = x, *b = y;
    int c = vg_str_cmp(a->parent, b->parent);
    return c ? c : vg_str_cmp(a->child, b->child);
}

static int collect_links(struct vigil *v, const struct spanstore_query *q, struct links *ls,
                         struct vg_arena *scratch, struct vg_err *err)
{
    struct spanstore_search_result r = { 0 };
    int rc = spanstore_search(v->traces, q, &r, err);
    size_t spans = 0;
    for (size_t i = 0; !rc && i < r.n && spans < JAEGER_DEP_MAX_SPANS; i++) {
        struct spanstore_trace t = { 0 };
        rc = spanstore_trace_get(v->traces, r.traces[i].trace_id, &t, err);
        if (rc == VG_ENOTFOUND)
            rc = 0;
        else if (rc == 0 && trace_links(&t, scratch, ls) < 0)
            rc = vg_err_set(err, VG_ENOMEM, "out of memory computing dependencies");
        spans += t.n;
        spanstore_trace_free(&t);
        vg_arena_reset(scratch);
    }
    spanstore_search_free(&r);
    return rc;
}

static void dependencies(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    struct vg_err err;
    vg_err_clear(&err);
    const int64_t max_ms = INT64_MAX / 1000000 - 1;
    int64_t end_ms = now_ns() / 1000000, lookback_ms = (int64_t)24 * 3600 * 1000, lb_ns = 0;
    int rc = arg_int(req, "endTs", max_ms, &end_ms, &err);
    const char *lb = http_arg_get(req, "lookback");
    if (rc >= 0 && lb && *lb && arg_int(req, "lookback", max_ms, &lookback_ms, &err) < 0) {
        /* not milliseconds: a duration then ("24h") */
        vg_err_clear(&err);
        if ((rc = arg_duration(req, "lookback", &lb_ns, &err)) > 0)
            lookback_ms = lb_ns / 1000000;
    }
    const char *only = http_arg_get(req, "service");
    struct links ls = { .cap = (size_t)2 * JAEGER_DEP_MAX_LINKS, .a = req->arena };
    struct vg_arena *scratch = rc >= 0 ? vg_arena_new(SCRATCH_BYTES) : NULL;
    ls.v = scratch ? vg_arena_calloc(req->arena, ls.cap * sizeof *ls.v) : NULL;
    if (rc >= 0 && !ls.v)
        rc = vg_err_set(&err, VG_ENOMEM, "out of memory computing dependencies");
    if (rc >= 0) {
        struct spanstore_query q;
        spanstore_query_init(&q);
        q.to_ns = end_ms * 1000000 + 999999;
        q.from_ns = end_ms > lookback_ms ? (end_ms - lookback_ms) * 1000000 : 0;
        q.limit = JAEGER_DEP_MAX_TRACES;
        rc = collect_links(v, &q, &ls, scratch, &err);
    }
    if (rc >= 0) {
        size_t k = 0, total = 0;
        for (size_t j = 0; j < ls.cap; j++)
            if (ls.v[j].parent.p)
                ls.v[k++] = ls.v[j];
        qsort(ls.v, k, sizeof *ls.v, cmp_link);
        begin(resp);
        vg_buf_putc(&resp->body, '[');
        for (size_t j = 0; j < k; j++) {
            const struct link *l = &ls.v[j];
            if (only && *only && !vg_str_eq_c(l->parent, only) && !vg_str_eq_c(l->child, only))
                continue;
            vg_buf_puts(&resp->body, total++ ? ",{\"parent\":" : "{\"parent\":");
            vg_buf_json_str(&resp->body, l->parent.p, l->parent.len);
            vg_buf_puts(&resp->body, ",\"child\":");
            vg_buf_json_str(&resp->body, l->child.p, l->child.len);
            vg_buf_printf(&resp->body, ",\"callCount\":%" PRIu64 "}", l->calls);
        }
        vg_buf_putc(&resp->body, ']');
        end(resp, total);
    }
    vg_arena_free(scratch);
    finish(resp, rc < 0 ? rc : 0, &err);
}

static void other(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    (void)v;
    not_found(resp, req->path);
}

static const struct http_route routes[] = {
    { "GET", PREFIX "/services", false, services, "/jaeger/api/services" },
    { "GET", SERVICES_PREFIX, true, service_operations,
      "/jaeger/api/services/{service}/operations" },
    { "GET", PREFIX "/operations", false, operations, "/jaeger/api/operations" },
    { "GET", PREFIX "/traces", false, search_traces, "/jaeger/api/traces" },
    { "GET", TRACES_PREFIX, true, trace_by_id, "/jaeger/api/traces/{traceID}" },
    { "GET", PREFIX "/dependencies", false, dependencies, "/jaeger/api/dependencies" },
    { "GET", "/jaeger/", true, other, "/jaeger/other" },
};

const struct vigil_module mod_jaeger_api = {
    .name = "jaeger_api",
    .routes = routes,
    .nroutes = sizeof routes / sizeof routes[0],
};
