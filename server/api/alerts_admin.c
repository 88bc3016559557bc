/* alerts_admin: see alerts_admin.h. */
#include "alerts_admin.h"

#include "../rules/notify.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define SILENCE_PREFIX "/api/v1/silence/"

static bool have_notifier(struct vigil *v, struct http_response *resp)
{
    if (v->notifier)
        return true;
    struct vg_err err;
    vg_err_set(&err, VG_EINTERNAL, "the notifier is not running");
    http_resp_error(resp, &err);
    return false;
}

static void finish(struct http_response *resp)
{
    if (vg_buf_failed(&resp->body)) {
        struct vg_err err;
        vg_err_set(&err, VG_ENOMEM, "out of memory building the response");
        vg_buf_reset(&resp->body);
        resp->body.failed = false;
        http_resp_error(resp, &err);
    }
}

static void silences(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    if (!have_notifier(v, resp))
        return;
    vg_buf_reset(&resp->body);
    if (!strcmp(req->method, "POST")) {
        char id[64];
        struct vg_err err;
        if (notifier_silence_create(v->notifier, req->body.p ? req->body.p : "", req->body.len,
                                    id, &err) < 0) {
            http_resp_error(resp, &err);
            return;
        }
        vg_buf_printf(&resp->body, "{\"silenceID\":\"%s\"}", id);
    } else {
        notifier_silences_json(v->notifier, &resp->body);
    }
    finish(resp);
}

static void silence_delete(struct vigil *v, struct http_request *req,
                           struct http_response *resp)
{
    if (!have_notifier(v, resp))
        return;
    const char *id = req->path + strlen(SILENCE_PREFIX);
    struct vg_err err;
    if (notifier_silence_expire(v->notifier, id, &err) < 0) {
        http_resp_error(resp, &err);
        return;
    }
    vg_buf_reset(&resp->body);
    vg_buf_puts(&resp->body, "{\"status\":\"success\"}");
}

static void notifications(struct vigil *v, struct http_request *req,
                          struct http_response *resp)
{
    if (!have_notifier(v, resp))
        return;
    long limit = 100;
    const char *l = http_arg_get(req, "limit");
    if (l) {
        char *end;
        limit = strtol(l, &end, 10);
        if (*end || end == l || limit < 0 || limit > INT_MAX) {
            struct vg_err err;
            vg_err_set(&err, VG_EINVAL, "limit: \"%.32s\" is not a count", l);
            http_resp_error(resp, &err);
            return;
        }
    }
    vg_buf_reset(&resp->body);
    vg_buf_puts(&resp->body, "{\"status\":\"success\",\"data\":");
    notifier_status_json(v->notifier, (size_t)limit, &resp->body);
    vg_buf_putc(&resp->body, '}');
    finish(resp);
}

static int check(const struct config *cfg, struct vg_err *err)
{
    return notifier_check_config(cfg, err);
}

static int init(struct vigil *v, struct vg_err *err)
{
    char path[PATH_MAX];
    if (vigil_store_path(v->cfg, "notify", path, sizeof path) < 0)
        return vg_err_set(err, VG_EINVAL, "storage.data_dir: path too long");
    v->notifier = notifier_new(v->cfg, path, v->metrics, err);
    return v->notifier ? 0 : err->code;
}

static void fini(struct vigil *v)
{
    notifier_free(v->notifier);
    v->notifier = NULL;
}

static const struct http_route routes[] = {
    { "GET,POST", "/api/v1/silences", false, silences, "/api/v1/silences" },
    { "DELETE", SILENCE_PREFIX, true, silence_delete, "/api/v1/silence/" },
    { "GET", "/api/v1/notifications", false, notifications, "/api/v1/notifications" },
};

const struct vigil_module mod_notify = {
    .name = "notify",
    .routes = routes,
    .nroutes = sizeof routes / sizeof routes[0],
    .check = check,
    .init = init,
    .free = fini,
};
