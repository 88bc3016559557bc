/* tempo: see tempo.h. */
#include "tempo.h"

#include "../../storage/spanstore/spanstore.h"
#include "../ingest/otlp_json.h"
#include "../ingest/otlp_traces.h"
#include "tempo_search.h"

#include <string.h>
#include <strings.h>

#define V1_PREFIX "/api/traces/"
#define V2_PREFIX "/api/v2/traces/"

/* JSON: v1 lists the ResourceSpans under "batches"; v2 wraps the whole request message
 * (whose one field is "resourceSpans") as "trace". */
static int encode_json(const otlp_traces_request *t, bool v2, struct vg_buf *out,
                       struct vg_err *err)
{
    if (v2) {
        vg_buf_puts(out, "{\"trace\":");
        int rc = otlp_json_encode(&t->base, out, err);
        vg_buf_putc(out, '}');
        return rc;
    }
    vg_buf_puts(out, "{\"batches\":[");
    for (size_t i = 0; i < t->n_resource_spans; i++) {
        if (i)
            vg_buf_putc(out, ',');
        int rc = otlp_json_encode(&t->resource_spans[i]->base, out, err);
        if (rc < 0)
            return rc;
    }
    vg_buf_puts(out, "]}");
    return 0;
}

/* Protobuf: Trace is field-for-field the request message; v2 nests it as field 1. */
static void encode_pb(const otlp_traces_request *t, bool v2, struct vg_buf *out)
{
    size_t n = protobuf_c_message_get_packed_size(&t->base);
    if (v2) {
        vg_buf_putc(out, 0x0a);
        vg_buf_put_uvarint(out, n);
    }
    if (n && vg_buf_reserve(out, n)) {
        protobuf_c_message_pack(&t->base, (uint8_t *)out->p + out->len);
        out->len += n;
    }
}

void tempo_trace_by_id(struct vigil *v, const char *id, bool v2, bool protobuf,
                       struct vg_arena *a, struct http_response *resp)
{
    struct vg_err err;
    vg_err_clear(&err);
    uint8_t tid[SPAN_TRACE_ID_LEN];
    struct spanstore_trace t = { 0 };
    otlp_traces_request *req;
    vg_buf_reset(&resp->body);
    int rc;
    if (!otlp_traces_parse_id(id, strlen(id), tid, sizeof tid))
        rc = vg_err_set(&err, VG_EINVAL,
                        "invalid trace id \"%.64s\": expected 1 to 32 hex digits", id);
    else if ((rc = spanstore_trace_get(v->traces, tid, &t, &err)) == VG_ENOTFOUND)
        vg_err_set(&err, VG_ENOTFOUND, "trace %.32s not found", id);
    else if (rc == 0 && (rc = otlp_traces_from_spans(t.spans, t.n, a, &req, &err)) == 0) {
        if (protobuf) {
            resp->content_type = "application/protobuf";
            encode_pb(req, v2, &resp->body);
        } else {
            resp->content_type = "application/json";
            rc = encode_json(req, v2, &resp->body, &err);
        }
        if (rc == 0 && vg_buf_failed(&resp->body))
            rc = vg_err_set(&err, VG_ENOMEM, "out of memory encoding the trace");
    }
    spanstore_trace_free(&t);
    if (rc < 0)
        http_resp_error_text(resp, &err);
    else
        resp->status = 200;
}

static void trace_by_id(struct vigil *v, struct http_request *req, struct http_response *resp,
                        bool v2)
{
    const char *id = req->path + strlen(v2 ? V2_PREFIX : V1_PREFIX);
    /* Requests built in-process (tests) carry no connection and so no headers. */
    const char *accept = req->conn ? http_header_get(req, "Accept") : NULL;
    bool protobuf = accept && strstr(accept, "application/protobuf") != NULL;
    tempo_trace_by_id(v, id, v2, protobuf, req->arena, resp);
}

static void trace_v1(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    trace_by_id(v, req, resp, false);
}

static void trace_v2(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    trace_by_id(v, req, resp, true);
}

static void echo(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    (void)v;
    (void)req;
    resp->content_type = "text/plain; charset=utf-8";
    vg_buf_puts(&resp->body, "echo");
}

/* Tempo's build information (Prometheus's common shape). Grafana reads the version to
 * decide which Tempo features to use, so it names the Tempo API level Vigil follows;
 * revision names Vigil itself. */
static void buildinfo(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    (void)v;
    (void)req;
    resp->content_type = "application/json";
    vg_buf_puts(&resp->body, "{\"version\":\"" TEMPO_API_VERSION "\",\"revision\":\"vigil-"
                VIGIL_VERSION "\",\"branch\":\"\",\"buildUser\":\"vigil\",\"buildDate\":\"\","
                "\"goVersion\":\"none (Vigil is written in C)\"}");
}

static const struct http_route routes[] = {
    { "GET", V1_PREFIX, true, trace_v1, "/api/traces/{traceID}" },
    { "GET", V2_PREFIX, true, trace_v2, "/api/v2/traces/{traceID}" },
    { "GET", "/api/echo", false, echo, "/api/echo" },
    { "GET", "/api/status/buildinfo", false, buildinfo, "/api/status/buildinfo" },
    { "GET", "/api/search", false, tempo_search, "/api/search" },
    { "GET", "/api/search/tags", false, tempo_search_tags, "/api/search/tags" },
    { "GET", "/api/v2/search/tags", false, tempo_search_tags_v2, "/api/v2/search/tags" },
    { "GET", TEMPO_TAG_VALUES_PREFIX, true, tempo_tag_values, "/api/search/tag/{tag}/values" },
    { "GET", TEMPO_TAG_VALUES_V2_PREFIX, true, tempo_tag_values_v2,
      "/api/v2/search/tag/{tag}/values" },
};

const struct vigil_module mod_tempo = {
    .name = "tempo",
    .routes = routes,
    .nroutes = sizeof routes / sizeof routes[0],
};
