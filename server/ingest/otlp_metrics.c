/* otlp_metrics: see otlp_metrics.h.
 *
 * Wire formats sent:
 *   ExportMetricsServiceResponse: empty (0 bytes / "{}") when everything was stored, else
 *     partial_success {rejected_data_points (1, int64), error_message (2, string)}.
 *   google.rpc.Status for HTTP errors (otlp_receiver.h).
 * rejected_data_points counts the OTLP data points the translation refused plus the samples
 * the store refused (too old, conflicting duplicate); error_message names the first. */
#include "otlp_metrics.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_log.h"
#include "../grpc.h"
#include "../http.h"
#include "ingest.h"
#include "otlp_delta.h"
#include "otlp_receiver.h"
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

static void count_rejections(struct vigil *v, const char *receiver,
                             const struct otlp_translate_result *tr)
{
    for (int r = 0; r < OTLP_REJECT_COUNT; r++)
        ingest_count_rejected(v, receiver, otlp_reject_name((enum otlp_reject)r),
                              tr->rejected_by[r]);
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
    size_t outer = otlp_receiver_cap_arena(cfg, a, OTLP_METRICS_ARENA_FACTOR);
    bool capped = vg_arena_get_limit(a) != 0;
    ProtobufCMessage *m;
    int rc = otlp_receiver_decode(
        &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor,
        body, len, json, a, OTLP_METRICS_ARENA_FACTOR, &m, err);
    otlp_metrics_request *req = (otlp_metrics_request *)m;
    if (rc < 0) {
        vg_arena_set_limit(a, outer);
        vg_complain(&complain_invalid, 60000, VG_LOG_WARN, receiver,
                    "rejected an OTLP metrics request", err->msg);
        return rc;
    }
    struct otlp_translate_result tr;
    rc = otlp_translate(req, cfg, v->otlp_state, a, &tr, err);
    vg_arena_set_limit(a, outer);
    rc = otlp_receiver_cap_or_nomem(rc, capped, OTLP_METRICS_ARENA_FACTOR, err);
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
    return otlp_receiver_encode(&resp.base, json, out, err);
}

/* ---- HTTP and gRPC ---- */

static void handle_http(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    otlp_receiver_http(v, req, resp, RECV_HTTP, "OTLP/HTTP metrics", otlp_metrics_export);
}

int otlp_metrics_grpc_export(struct vigil *v, const unsigned char *req, size_t len,
                             struct vg_buf *resp, struct vg_err *err)
{
    return otlp_receiver_grpc(v, RECV_GRPC, otlp_metrics_export, req, len, resp, err);
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
