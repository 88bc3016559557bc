/* otlp_receiver: see otlp_receiver.h. */
#include "otlp_receiver.h"

#include "../../storage/base/vg_alloc.h"
#include "../grpc.h"
#include "../pb_alloc.h"
#include "ingest.h"
#include "otlp_json.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

/* True when the media type of Content-Type value ct (parameters ignored) is want. */
static bool media_is(const char *ct, const char *want)
{
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strcspn(ct, "; \t");
    return n == strlen(want) && strncasecmp(ct, want, n) == 0;
}

bool otlp_receiver_accept(const struct http_request *req, const char *what, bool *json,
                          struct http_response *resp)
{
    struct vg_err err;
    const char *ct = req->content_type;
    if (ct && media_is(ct, "application/x-protobuf")) {
        *json = false;
    } else if (ct && media_is(ct, "application/json")) {
        *json = true;
    } else {
        vg_err_set(&err, VG_EMEDIA,
                   "unsupported Content-Type \"%.100s\": %s must be application/x-protobuf or "
                   "application/json",
                   ct ? ct : "(none)", what);
        http_resp_error_text(resp, &err);
        return false;
    }
    const char *ce = req->content_encoding;
    if (ce && *ce && strcasecmp(ce, "identity") != 0) {
        vg_err_set(&err, VG_EMEDIA, "unsupported Content-Encoding \"%.100s\": use gzip or none",
                   ce);
        http_resp_error_text(resp, &err);
        return false;
    }
    return true;
}

size_t otlp_receiver_cap_arena(const struct config *cfg, struct vg_arena *a, unsigned factor)
{
    size_t cap = 0;
    if (cfg->limits.max_decoded_bytes > 0) {
        uint64_t c = (uint64_t)cfg->limits.max_decoded_bytes * factor;
        cap = c > SIZE_MAX / 2 ? SIZE_MAX / 2 : (size_t)c;
        cap += vg_arena_used(a);
    }
    size_t outer = vg_arena_get_limit(a);
    if (outer && (cap == 0 || outer < cap))
        cap = outer;
    vg_arena_set_limit(a, cap);
    return outer;
}

int otlp_receiver_cap_or_nomem(int rc, bool capped, unsigned factor, struct vg_err *err)
{
    if (rc != VG_ENOMEM || !capped)
        return rc;
    void *probe = vg_malloc((size_t)1 << 16);
    if (probe)
        rc = vg_err_set(err, VG_ETOOLARGE,
                        "request needs more than %u x limits.max_decoded_bytes of memory to "
                        "translate; send smaller batches",
                        factor);
    vg_free(probe);
    return rc;
}

/* The arena allocator, noting whether an allocation failed so that a NULL from unpack is
 * told apart from malformed input. */
struct track_alloc {
    ProtobufCAllocator base;
    bool failed;
};

static void *track_alloc_fn(void *data, size_t n)
{
    struct track_alloc *t = data;
    void *p = t->base.alloc(t->base.allocator_data, n);
    if (!p)
        t->failed = true;
    return p;
}

static void track_free_fn(void *data, void *p)
{
    struct track_alloc *t = data;
    t->base.free(t->base.allocator_data, p);
}

int otlp_receiver_decode(const ProtobufCMessageDescriptor *d, const void *body, size_t len,
                         bool json, struct vg_arena *a, unsigned factor,
                         ProtobufCMessage **out, struct vg_err *err)
{
    *out = NULL;
    if (json)
        return otlp_json_decode(d, body, len, a, out, err);
    /* protobuf-c's unpack recursion has no limit of its own (deep AnyValue nesting). */
    int rc = pb_check_depth(d, body, len, PB_MAX_DEPTH, err);
    if (rc < 0)
        return rc;
    struct track_alloc t = { .failed = false };
    pb_alloc_from_arena(a, &t.base);
    ProtobufCAllocator alloc = { .alloc = track_alloc_fn, .free = track_free_fn,
                                 .allocator_data = &t };
    *out = protobuf_c_message_unpack(d, &alloc, len, body);
    if (*out)
        return 0;
    if (t.failed)
        return vg_err_set(err, VG_ETOOLARGE,
                          "request too large to decode: a %zu-byte message may use at most %u "
                          "times limits.max_decoded_bytes in memory",
                          len, factor);
    return vg_err_set(err, VG_EINVAL, "malformed protobuf: the %zu-byte body is not an %s", len,
                      d->short_name);
}

int otlp_receiver_encode(const ProtobufCMessage *m, bool json, struct vg_buf *out,
                         struct vg_err *err)
{
    if (json)
        return otlp_json_encode(m, out, err);
    size_t n = protobuf_c_message_get_packed_size(m);
    if (n && vg_buf_reserve(out, n)) {
        protobuf_c_message_pack(m, (uint8_t *)out->p + out->len);
        out->len += n;
    }
    if (vg_buf_failed(out))
        return vg_err_set(err, VG_ENOMEM, "out of memory encoding the response");
    return 0;
}

void otlp_receiver_error(struct http_response *resp, bool json, const struct vg_err *err)
{
    resp->status = http_status_for(err->code);
    vg_buf_reset(&resp->body);
    int code = grpc_status_for(err->code);
    size_t mlen = strlen(err->msg);
    if (json) {
        resp->content_type = "application/json";
        vg_buf_printf(&resp->body, "{\"code\":%d,\"message\":", code);
        vg_buf_json_str(&resp->body, err->msg, mlen);
        vg_buf_putc(&resp->body, '}');
    } else {
        resp->content_type = "application/x-protobuf";
        if (code) {
            vg_buf_putc(&resp->body, 0x08);
            vg_buf_put_uvarint(&resp->body, (uint64_t)(int64_t)code);
        }
        vg_buf_putc(&resp->body, 0x12);
        vg_buf_put_uvarint(&resp->body, mlen);
        vg_buf_append(&resp->body, err->msg, mlen);
    }
    if (err->code == VG_EOVERLOAD || err->code == VG_ENOMEM || err->code == VG_EIO)
        http_resp_header(resp, "Retry-After", "5");
}

void otlp_receiver_http(struct vigil *v, struct http_request *req, struct http_response *resp,
                        const char *receiver, const char *what, otlp_receiver_export_fn fn)
{
    bool json;
    if (otlp_receiver_accept(req, what, &json, resp)) {
        struct vg_err err;
        vg_err_clear(&err);
        vg_buf_reset(&resp->body);
        if (fn(v, receiver, req->body.p, req->body.len, json, req->arena, &resp->body, &err) < 0) {
            otlp_receiver_error(resp, json, &err);
        } else {
            resp->status = 200;
            resp->content_type = json ? "application/json" : "application/x-protobuf";
        }
    }
    ingest_count_request(v, receiver, resp->status);
}

int otlp_receiver_grpc(struct vigil *v, const char *receiver, otlp_receiver_export_fn fn,
                       const unsigned char *req, size_t len, struct vg_buf *resp,
                       struct vg_err *err)
{
    struct vg_arena *a = vg_arena_new((size_t)64 * 1024);
    int rc;
    if (!a)
        rc = vg_err_set(err, VG_ENOMEM, "out of memory");
    else
        rc = fn(v, receiver, req, len, false, a, resp, err);
    vg_arena_free(a);
    ingest_count_request(v, receiver, grpc_status_for(rc));
    return rc;
}
