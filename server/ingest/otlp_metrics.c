/* otlp_metrics: see otlp_metrics.h.
 *
 * Wire formats sent:
 *   ExportMetricsServiceResponse: empty (0 bytes / "{}") when everything was stored, else
 *     partial_success {rejected_data_points (1, int64), error_message (2, string)}.
 *   google.rpc.Status for HTTP errors, written by hand (no .proto needed):
 *     field 1 code int32 (varint), field 2 message string; JSON {"code":N,"message":"..."}.
 * rejected_data_points counts the OTLP data points the translation refused plus the samples
 * the store refused (too old, conflicting duplicate); error_message names the first. */
#include "otlp_metrics.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_log.h"
#include "../grpc.h"
#include "../http.h"
#include "../pb_alloc.h"
#include "ingest.h"
#include "otlp_delta.h"
#include "otlp_json.h"
#include "otlp_translate.h"

#include "otlp_metrics_service.pb-c.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceResponse pb_resp;
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsPartialSuccess pb_partial;

#define RECV_HTTP "otlp_http"
#define RECV_GRPC "otlp_grpc"

static struct vg_complaint complain_invalid;
static struct vg_complaint complain_partial;
static struct vg_complaint complain_storage;

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

static int decode(const void *body, size_t len, bool json, struct vg_arena *a,
                  otlp_metrics_request **out, struct vg_err *err)
{
    if (json) {
        ProtobufCMessage *m;
        int rc = otlp_json_decode(
            &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor,
            body, len, a, &m, err);
        *out = rc == 0 ? (otlp_metrics_request *)m : NULL;
        return rc;
    }
    /* protobuf-c's unpack recursion has no limit of its own (deep AnyValue nesting). */
    int rc = pb_check_depth(
        &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor,
        body, len, PB_MAX_DEPTH, err);
    if (rc < 0)
        return rc;
    struct track_alloc t = { .failed = false };
    pb_alloc_from_arena(a, &t.base);
    ProtobufCAllocator alloc = { .alloc = track_alloc_fn, .free = track_free_fn,
                                 .allocator_data = &t };
    *out = opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__unpack(
        &alloc, len, body);
    if (*out)
        return 0;
    if (t.failed)
        return vg_err_set(err, VG_ETOOLARGE,
                          "request too large to decode: a %zu-byte message may use at most %d "
                          "times limits.max_decoded_bytes in memory",
                          len, OTLP_METRICS_ARENA_FACTOR);
    return vg_err_set(err, VG_EINVAL,
                      "malformed protobuf: the %zu-byte body is not an "
                      "ExportMetricsServiceRequest",
                      len);
}

static void count_rejections(struct vigil *v, const char *receiver,
                             const struct otlp_translate_result *tr)
{
    for (int r = 0; r < OTLP_REJECT_COUNT; r++)
        ingest_count_rejected(v, receiver, otlp_reject_name((enum otlp_reject)r),
                              tr->rejected_by[r]);
}

static int encode_response(const pb_resp *resp, bool json, struct vg_buf *out,
                           struct vg_err *err)
{
    if (json)
        return otlp_json_encode(&resp->base, out, err);
    size_t n = opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__get_packed_size(resp);
    if (n && vg_buf_reserve(out, n)) {
        opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__pack(
            resp, (uint8_t *)out->p + out->len);
        out->len += n;
    }
    if (vg_buf_failed(out))
        return vg_err_set(err, VG_ENOMEM, "out of memory encoding the response");
    return 0;
}

/* Fills the partial success of the response; false when everything was stored. */
static bool partial(const struct otlp_translate_result *tr, const struct tsdb_append_result *st,
                    pb_partial *ps, char *msg, size_t cap)
{
    uint64_t store_rejected = 0;
    for (int r = 0; r < TSDB_REJECT_COUNT; r++)
        store_rejected += st->rejected[r];
    uint64_t rejected = tr->rejected + store_rejected;
    if (!rejected && !tr->reason[0])
        return false;
    if (tr->rejected)
        snprintf(msg, cap, "%llu of %llu data points rejected; first: %s",
                 (unsigned long long)tr->rejected, (unsigned long long)tr->points, tr->reason);
    else if (store_rejected)
        snprintf(msg, cap, "%llu samples rejected by the store; first: %s",
                 (unsigned long long)store_rejected, st->first_reject);
    else
        snprintf(msg, cap, "%s", tr->reason); /* a warning only */
    if (tr->rejected && store_rejected) {
        size_t n = strlen(msg);
        snprintf(msg + n, cap - n, "; %llu samples rejected by the store; first: %s",
                 (unsigned long long)store_rejected, st->first_reject);
    }
    ps->rejected_data_points = (int64_t)rejected;
    ps->error_message = msg;
    return true;
}

int otlp_metrics_export(struct vigil *v, const char *receiver, const void *body, size_t len,
                        bool json, struct vg_arena *a, struct vg_buf *out, struct vg_err *err)
{
    const struct config *cfg = v->cfg;
    size_t cap = 0;
    if (cfg->limits.max_decoded_bytes > 0) {
        uint64_t c = (uint64_t)cfg->limits.max_decoded_bytes * OTLP_METRICS_ARENA_FACTOR;
        cap = c > SIZE_MAX / 2 ? SIZE_MAX / 2 : (size_t)c;
        cap += vg_arena_used(a);
    }
    size_t outer = vg_arena_get_limit(a); /* the front end's own cap stays in force */
    if (outer && (cap == 0 || outer < cap))
        cap = outer;
    vg_arena_set_limit(a, cap);
    otlp_metrics_request *req;
    int rc = decode(body, len, json, a, &req, err);
    if (rc < 0) {
        vg_arena_set_limit(a, outer);
        vg_complain(&complain_invalid, 60000, VG_LOG_WARN, receiver,
                    "rejected an OTLP metrics request", err->msg);
        return rc;
    }
    struct otlp_translate_result tr;
    rc = otlp_translate(req, cfg, v->otlp_state, a, &tr, err);
    vg_arena_set_limit(a, outer);
    if (rc == VG_ENOMEM && cap) {
        /* The arena refuses at its cap or when vg_malloc fails; a probe tells which. */
        void *probe = vg_malloc(1 << 16);
        if (probe)
            rc = vg_err_set(err, VG_ETOOLARGE,
                            "request needs more than %d x limits.max_decoded_bytes of memory "
                            "to translate; send smaller batches",
                            OTLP_METRICS_ARENA_FACTOR);
        vg_free(probe);
    }
    if (rc < 0)
        return rc;
    count_rejections(v, receiver, &tr);
    struct tsdb_append_result st;
    memset(&st, 0, sizeof st);
    if (tr.batch.nseries || tr.batch.nmeta) {
        rc = ingest_store(v, receiver, &tr.batch, &st, err);
        if (rc < 0) {
            vg_complain(&complain_storage, 10000, VG_LOG_ERROR, receiver,
                        "storing an OTLP metrics request failed", err->msg);
            return rc;
        }
    }
    pb_resp resp = OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_SERVICE_RESPONSE__INIT;
    pb_partial ps = OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_PARTIAL_SUCCESS__INIT;
    char msg[768];
    if (partial(&tr, &st, &ps, msg, sizeof msg)) {
        resp.partial_success = &ps;
        vg_complain(&complain_partial, 60000, VG_LOG_WARN, receiver,
                    "stored part of an OTLP metrics request", msg);
    }
    return encode_response(&resp, json, out, err);
}

/* ---- HTTP ---- */

enum media { MEDIA_PROTOBUF, MEDIA_JSON, MEDIA_OTHER };

/* The media type of a Content-Type value, parameters (charset) ignored. */
static enum media media_of(const char *ct)
{
    if (!ct)
        return MEDIA_OTHER;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strcspn(ct, "; \t");
    if (n == strlen("application/x-protobuf") && strncasecmp(ct, "application/x-protobuf", n) == 0)
        return MEDIA_PROTOBUF;
    if (n == strlen("application/json") && strncasecmp(ct, "application/json", n) == 0)
        return MEDIA_JSON;
    return MEDIA_OTHER;
}

static void put_varint(struct vg_buf *b, uint64_t v)
{
    vg_buf_put_uvarint(b, v);
}

/* A google.rpc.Status body in the request's encoding. */
static void resp_status(struct http_response *resp, bool json, const struct vg_err *err)
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
            put_varint(&resp->body, (uint64_t)(int64_t)code);
        }
        vg_buf_putc(&resp->body, 0x12);
        put_varint(&resp->body, mlen);
        vg_buf_append(&resp->body, err->msg, mlen);
    }
    if (err->code == VG_EOVERLOAD || err->code == VG_ENOMEM || err->code == VG_EIO)
        http_resp_header(resp, "Retry-After", "5");
}

static void handle_http(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    struct vg_err err;
    vg_err_clear(&err);
    enum media m = media_of(req->content_type);
    if (m == MEDIA_OTHER) {
        vg_err_set(&err, VG_EMEDIA,
                   "unsupported Content-Type \"%.100s\": OTLP/HTTP metrics must be "
                   "application/x-protobuf or application/json",
                   req->content_type ? req->content_type : "(none)");
        http_resp_error_text(resp, &err);
        ingest_count_request(v, RECV_HTTP, resp->status);
        return;
    }
    const char *ce = req->content_encoding;
    if (ce && *ce && strcasecmp(ce, "identity") != 0) {
        vg_err_set(&err, VG_EMEDIA,
                   "unsupported Content-Encoding \"%.100s\": use gzip or none", ce);
        http_resp_error_text(resp, &err);
        ingest_count_request(v, RECV_HTTP, resp->status);
        return;
    }
    bool json = m == MEDIA_JSON;
    vg_buf_reset(&resp->body);
    int rc = otlp_metrics_export(v, RECV_HTTP, req->body.p, req->body.len, json, req->arena,
                                 &resp->body, &err);
    if (rc < 0) {
        resp_status(resp, json, &err);
    } else {
        resp->status = 200;
        resp->content_type = json ? "application/json" : "application/x-protobuf";
    }
    ingest_count_request(v, RECV_HTTP, resp->status);
}

/* ---- gRPC ---- */

int otlp_metrics_grpc_export(struct vigil *v, const unsigned char *req, size_t len,
                             struct vg_buf *resp, struct vg_err *err)
{
    struct vg_arena *a = vg_arena_new((size_t)64 * 1024);
    int rc;
    if (!a)
        rc = vg_err_set(err, VG_ENOMEM, "out of memory");
    else
        rc = otlp_metrics_export(v, RECV_GRPC, req, len, false, a, resp, err);
    vg_arena_free(a);
    ingest_count_request(v, RECV_GRPC, grpc_status_for(rc));
    return rc;
}

/* ---- module ---- */

static int init(struct vigil *v, struct vg_err *err)
{
    if (v->cfg->otlp_delta != OTLP_DELTA_ACCUMULATE)
        return 0;
    v->otlp_state = otlp_delta_new((size_t)v->cfg->otlp_delta_max_series,
                                   v->cfg->otlp_delta_idle_timeout_ms);
    if (!v->otlp_state)
        return vg_err_set(err, VG_ENOMEM, "out of memory creating the OTLP delta state");
    return 0;
}

static void fini(struct vigil *v)
{
    otlp_delta_free(v->otlp_state);
    v->otlp_state = NULL;
}

static const struct http_route routes[] = {
    { "POST", "/v1/metrics", false, handle_http, "/v1/metrics" },
};

static const struct grpc_method methods[] = {
    { "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
      otlp_metrics_grpc_export },
};

const struct vigil_module mod_otlp_metrics = {
    .name = "otlp_metrics",
    .routes = routes,
    .nroutes = sizeof routes / sizeof routes[0],
    .grpc_methods = methods,
    .ngrpc = sizeof methods / sizeof methods[0],
    .init = init,
    .free = fini,
};
