/* health: see health.h. Readiness is answered only once vigil_start has opened the
 * stores, which is before the listener exists, so both say the same today; they are kept
 * apart because Prometheus users probe them separately. */
#include "health.h"

#include "../../storage/tsdb/tsdb.h"

static void healthy(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    (void)v;
    (void)req;
    resp->content_type = "text/plain; charset=utf-8";
    vg_buf_puts(&resp->body, "Vigil is Healthy.\n");
}

static void ready(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    (void)req;
    resp->content_type = "text/plain; charset=utf-8";
    if (!v->tsdb) {
        resp->status = 503;
        vg_buf_puts(&resp->body, "Vigil is not ready: the stores are not open.\n");
        return;
    }
    vg_buf_puts(&resp->body, "Vigil is Ready.\n");
}

static void compact(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    (void)req;
    struct vg_err err;
    if (tsdb_compact(v->tsdb, &err) < 0) {
        http_resp_error(resp, &err);
        return;
    }
    resp->status = 204;
}

static const struct http_route routes[] = {
    { "GET", "/-/healthy", false, healthy, "/-/healthy" },
    { "GET", "/-/ready", false, ready, "/-/ready" },
    { "POST,PUT", "/api/v1/admin/tsdb/compact", false, compact, "/api/v1/admin/tsdb/compact" },
};

const struct vigil_module mod_health = {
    .name = "health",
    .routes = routes,
    .nroutes = sizeof routes / sizeof routes[0],
};
