/* http: see http.h.
 *
 * Request life cycle with libmicrohttpd (thread pool, epoll):
 *   1st callback    create struct req_state (arena, start time); refuse early with 413
 *                   when Content-Length is over max_body_bytes.
 *   upload chunks   appended to the body buffer; past the limit -> 413 queued at once.
 *   last callback   undo Content-Encoding, collect arguments, route, run the handler,
 *                   queue its response.
 *   completed       (MHD_OPTION_NOTIFY_COMPLETED) count it in /metrics, free the state.
 * Handlers never make MHD drop a connection: every refusal is a status with a body.
 *
 * Upgrades (http.h): a 101 answer with an upgrade function is queued as MHD's upgrade
 * response; MHD calls on_upgrade with the socket once the 101 is sent, and a thread per
 * upgraded connection (struct upgrade_run, listed in the server under up_lock) runs the
 * function, then tells MHD to close. Finished runs are joined when the next one starts
 * and at http_stop, which first raises `stopping` so running functions return. */
#include "http.h"

#include "../storage/base/vg_alloc.h"
#include "../storage/base/vg_log.h"
#include "compress.h"
#include "metrics.h"
#include "netaddr.h"
#include "vigil.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* libmicrohttpd's per-connection pool holds the request line and headers (so this is
 * the largest URL plus headers accepted; larger gets 431/414) and its read buffer. It
 * clears the whole pool before each keep-alive request: at 256 KiB that memset was 6%
 * of an OTLP HTTP request's CPU outside the stores (perf, 100-span requests). 64 KiB
 * still takes URLs eight times nginx's default header buffer. */
#define HTTP_CONN_POOL ((size_t)64 << 10)

struct upgrade_run {
    struct http_server *s;
    struct http_upgraded u;
    struct MHD_UpgradeResponseHandle *urh;
    http_upgrade_fn fn;
    void *cls;
    char *extra;         /* copy of MHD's extra_in */
    pthread_t thread;
    atomic_bool done;
    struct upgrade_run *next;
};

struct http_server {
    struct vigil *v;
    struct MHD_Daemon *d;
    const struct http_route *const *routes;
    size_t nroutes;
    struct http_server_opts o;
    unsigned port;
    atomic_int inflight;
    struct metric_family *requests;
    struct metric_family *duration;
    struct vg_complaint refused_log;
    atomic_bool stopping;
    pthread_mutex_t up_lock;      /* guards upgrades and nupgraded */
    struct upgrade_run *upgrades; /* started runs, not yet joined */
    bool closed;                  /* http_stop's last join is done: no more runs */
    size_t nupgraded;             /* 101s queued or running */
};

struct req_state {
    struct http_server *s;
    struct http_request req;
    http_upgrade_fn upgrade;       /* a queued 101 not yet handed to its thread */
    void (*upgrade_free)(void *cls);
    void *upgrade_cls;
    struct vg_buf body;
    struct timespec start;
    const char *handler_label;
    int status;
    bool too_large;
    bool responded;
};

static double elapsed_s(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/* ---- helpers offered to handlers ---- */

const char *http_header_get(struct http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *http_arg_get(const struct http_request *req, const char *key)
{
    for (size_t i = 0; i < req->nargs; i++)
        if (!strcmp(req->args[i].key, key))
            return req->args[i].value;
    return NULL;
}

size_t http_arg_all(const struct http_request *req, const char *key, const char **out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < req->nargs; i++) {
        if (strcmp(req->args[i].key, key) != 0)
            continue;
        if (n < max)
            out[n] = req->args[i].value;
        n++;
    }
    return n;
}

void http_resp_header(struct http_response *resp, const char *name, const char *value)
{
    if (resp->nheaders < HTTP_MAX_RESP_HEADERS)
        resp->headers[resp->nheaders++] = (struct http_header){ name, value };
}

int http_status_for(int code)
{
    switch (code) {
    case VG_OK: return 200;
    case VG_EINVAL:
    case VG_ECONFLICT: return 400;
    case VG_ETOOLARGE: return 413;
    case VG_EMEDIA: return 415;
    case VG_ENOTFOUND: return 404;
    case VG_EMETHOD: return 405;
    case VG_EOVERLOAD: return 429;
    case VG_ENOMEM:
    case VG_EIO: return 503; /* storage trouble is worth a retry by senders */
    default: return 500;
    }
}

static const char *error_type_for(int code)
{
    switch (code) {
    case VG_EINVAL:
    case VG_ECONFLICT:
    case VG_ETOOLARGE:
    case VG_EMEDIA:
        return "bad_data";
    case VG_ENOTFOUND: return "not_found";
    case VG_EMETHOD: return "bad_data";
    case VG_EOVERLOAD:
    case VG_ENOMEM:
        return "unavailable";
    default: return "internal";
    }
}

void http_resp_error(struct http_response *resp, const struct vg_err *err)
{
    resp->status = http_status_for(err->code);
    resp->content_type = "application/json";
    vg_buf_reset(&resp->body);
    vg_buf_puts(&resp->body, "{\"status\":\"error\",\"errorType\":\"");
    vg_buf_puts(&resp->body, error_type_for(err->code));
    vg_buf_puts(&resp->body, "\",\"error\":");
    vg_buf_json_str(&resp->body, err->msg, strlen(err->msg));
    vg_buf_puts(&resp->body, "}");
    if (err->code == VG_EOVERLOAD || err->code == VG_ENOMEM || err->code == VG_EIO)
        http_resp_header(resp, "Retry-After", "5");
}

void http_resp_error_text(struct http_response *resp, const struct vg_err *err)
{
    resp->status = http_status_for(err->code);
    resp->content_type = "text/plain; charset=utf-8";
    vg_buf_reset(&resp->body);
    vg_buf_puts(&resp->body, err->msg);
    vg_buf_putc(&resp->body, '\n');
    if (err->code == VG_EOVERLOAD || err->code == VG_ENOMEM || err->code == VG_EIO)
        http_resp_header(resp, "Retry-After", "5");
}

/* ---- argument parsing ---- */

struct args_acc {
    struct vg_arena *a;
    struct http_arg *v;
    size_t n, cap;
    bool failed;
};

static void args_push(struct args_acc *acc, const char *k, const char *val)
{
    if (acc->failed)
        return;
    if (acc->n == acc->cap) {
        size_t ncap = acc->cap ? acc->cap * 2 : 16;
        struct http_arg *nv = vg_arena_alloc(acc->a, ncap * sizeof *nv);
        if (!nv) {
            acc->failed = true;
            return;
        }
        if (acc->n)
            memcpy(nv, acc->v, acc->n * sizeof *nv);
        acc->v = nv;
        acc->cap = ncap;
    }
    acc->v[acc->n++] = (struct http_arg){ k, val };
}

static enum MHD_Result collect_get_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                       const char *value)
{
    (void)kind;
    struct args_acc *acc = cls;
    char *k = vg_arena_strndup(acc->a, key, strlen(key));
    char *v = vg_arena_strndup(acc->a, value ? value : "", value ? strlen(value) : 0);
    if (!k || !v)
        acc->failed = true;
    else
        args_push(acc, k, v);
    return MHD_YES;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes application/x-www-form-urlencoded text ('+' is a space, %XX a byte) into an
 * arena string. Malformed escapes are kept literally, as browsers and Go do. */
static char *form_unescape(struct vg_arena *a, const char *s, size_t n)
{
    char *d = vg_arena_alloc(a, n + 1);
    if (!d)
        return NULL;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            d[j++] = ' ';
        } else if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            d[j++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            d[j++] = s[i];
        }
    }
    d[j] = '\0';
    return d;
}

static void parse_form(struct args_acc *acc, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t e = i;
        while (e < n && s[e] != '&')
            e++;
        size_t eq = i;
        while (eq < e && s[eq] != '=')
            eq++;
        if (e > i) {
            char *k = form_unescape(acc->a, s + i, eq - i);
            char *v = eq < e ? form_unescape(acc->a, s + eq + 1, e - eq - 1)
                             : form_unescape(acc->a, "", 0);
            if (!k || !v)
                acc->failed = true;
            else
                args_push(acc, k, v);
        }
        i = e + 1;
    }
}

int http_form_parse(struct vg_arena *a, const char *s, size_t n, struct http_arg **out,
                    size_t *nout)
{
    struct args_acc acc = { .a = a };
    parse_form(&acc, s, n);
    if (acc.failed)
        return VG_ENOMEM;
    *out = acc.v;
    *nout = acc.n;
    return 0;
}

static bool media_is(const char *ct, const char *want)
{
    if (!ct)
        return false;
    size_t l = strlen(want);
    while (*ct == ' ')
        ct++;
    return strncasecmp(ct, want, l) == 0 && (ct[l] == '\0' || ct[l] == ';' || ct[l] == ' ');
}

/* ---- responses ---- */

static void free_body(void *p)
{
    vg_free(p);
}

static void on_upgrade(void *cls, struct MHD_Connection *conn, void *con_cls,
                       const char *extra_in, size_t extra_in_size, MHD_socket sock,
                       struct MHD_UpgradeResponseHandle *urh);
static enum MHD_Result send_error(struct MHD_Connection *conn, struct req_state *st, int code,
                                  const char *msg);

/* Queues the 101 of an accepted upgrade, or a 503 past HTTP_MAX_UPGRADED. */
static enum MHD_Result send_upgrade(struct MHD_Connection *conn, struct req_state *st,
                                    struct http_response *resp)
{
    struct http_server *s = st->s;
    pthread_mutex_lock(&s->up_lock);
    bool full = s->nupgraded >= HTTP_MAX_UPGRADED || atomic_load(&s->stopping);
    if (!full)
        s->nupgraded++;
    pthread_mutex_unlock(&s->up_lock);
    if (full) {
        if (resp->upgrade_free)
            resp->upgrade_free(resp->upgrade_cls);
        char msg[128];
        snprintf(msg, sizeof msg, "too many upgraded connections (limit %d)", HTTP_MAX_UPGRADED);
        return send_error(conn, st, VG_EOVERLOAD, msg);
    }
    st->upgrade = resp->upgrade;
    st->upgrade_free = resp->upgrade_free;
    st->upgrade_cls = resp->upgrade_cls;
    struct MHD_Response *r = MHD_create_response_for_upgrade(on_upgrade, s);
    if (!r)
        return MHD_NO; /* on_completed frees the cls and releases the slot */
    for (size_t i = 0; i < resp->nheaders; i++)
        MHD_add_response_header(r, resp->headers[i].name, resp->headers[i].value);
    st->status = 101;
    st->responded = true;
    enum MHD_Result rc = MHD_queue_response(conn, MHD_HTTP_SWITCHING_PROTOCOLS, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result send_response(struct MHD_Connection *conn, struct req_state *st,
                                     struct http_response *resp)
{
    if (resp->status == 101 && resp->upgrade)
        return send_upgrade(conn, st, resp);
    size_t len = 0;
    char *body = vg_buf_steal(&resp->body, &len);
    struct MHD_Response *r;
    if (body)
        r = MHD_create_response_from_buffer_with_free_callback(len, body, free_body);
    else
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!r) {
        vg_free(body);
        return MHD_NO;
    }
    if (resp->status != 204)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                                resp->content_type ? resp->content_type : "application/json");
    for (size_t i = 0; i < resp->nheaders; i++)
        MHD_add_response_header(r, resp->headers[i].name, resp->headers[i].value);
    st->status = resp->status;
    st->responded = true;
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned)resp->status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result send_error(struct MHD_Connection *conn, struct req_state *st, int code,
                                  const char *msg)
{
    struct http_response resp = { .status = 200 };
    struct vg_err err;
    vg_err_set(&err, code, "%s", msg);
    http_resp_error(&resp, &err);
    enum MHD_Result rc = send_response(conn, st, &resp);
    vg_buf_free(&resp.body);
    return rc;
}

/* ---- routing ---- */

static bool method_allowed(const char *list, const char *method)
{
    size_t ml = strlen(method);
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == ml && !strncmp(p, method, l))
            return true;
        if (!e)
            break;
        p = e + 1;
    }
    /* HEAD is answered like GET (MHD drops the body). */
    return !strcmp(method, "HEAD") && method_allowed(list, "GET");
}

static bool path_matches(const struct http_route *r, const char *path)
{
    if (r->prefix)
        return !strncmp(path, r->path, strlen(r->path));
    return !strcmp(path, r->path);
}

static enum MHD_Result dispatch(struct http_server *s, struct MHD_Connection *conn,
                                struct req_state *st)
{
    struct http_request *req = &st->req;
    const struct http_route *match = NULL;
    const char *allowed = NULL;
    for (size_t i = 0; i < s->nroutes && !match; i++) {
        const struct http_route *r = s->routes[i];
        if (!path_matches(r, req->path))
            continue;
        if (method_allowed(r->method, req->method))
            match = r;
        else if (!allowed)
            allowed = r->method;
    }
    if (!match) {
        char msg[300];
        if (allowed) {
            st->handler_label = "other";
            snprintf(msg, sizeof msg, "method %s not allowed for %.200s (allowed: %s)",
                     req->method, req->path, allowed);
            return send_error(conn, st, VG_EMETHOD, msg);
        }
        st->handler_label = "not_found";
        snprintf(msg, sizeof msg, "no such endpoint: %.200s", req->path);
        return send_error(conn, st, VG_ENOTFOUND, msg);
    }
    st->handler_label = match->handler_label ? match->handler_label : match->path;

    /* Undo transfer compression the receivers do not care about. */
    const char *ce = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Encoding");
    req->content_encoding = ce;
    req->body = (struct vg_str){ st->body.p ? st->body.p : "", st->body.len };
    if (ce && (!strcasecmp(ce, "gzip") || !strcasecmp(ce, "deflate") || !strcasecmp(ce, "x-gzip"))) {
        struct vg_err err;
        struct vg_str out;
        if (compress_inflate(req->body.p, req->body.len, s->o.max_decoded_bytes, req->arena,
                             &out, &err) < 0) {
            struct http_response resp = { .status = 200 };
            http_resp_error_text(&resp, &err);
            enum MHD_Result rc = send_response(conn, st, &resp);
            vg_buf_free(&resp.body);
            return rc;
        }
        req->body = out;
        req->content_encoding = NULL;
    } else if (ce && !strcasecmp(ce, "identity")) {
        req->content_encoding = NULL;
    }

    struct args_acc acc = { .a = req->arena };
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_get_arg, &acc);
    if (!strcmp(req->method, "POST") && media_is(req->content_type, "application/x-www-form-urlencoded")
        && !req->content_encoding)
        parse_form(&acc, req->body.p, req->body.len);
    if (acc.failed)
        return send_error(conn, st, VG_ENOMEM, "out of memory while reading arguments");
    req->args = acc.v;
    req->nargs = acc.n;

    struct http_response resp = { .status = 200, .content_type = "application/json" };
    match->fn(s->v, req, &resp);
    enum MHD_Result rc = send_response(conn, st, &resp);
    vg_buf_free(&resp.body);
    return rc;
}

/* Most a request body is sized to from its Content-Length before it arrives. */
#define BODY_PRESIZE_MAX (1u << 20)

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    struct http_server *s = cls;
    struct req_state *st = *con_cls;
    if (!st) {
        st = vg_calloc(1, sizeof *st);
        if (!st)
            return MHD_NO; /* cannot even allocate state: nothing else to do */
        clock_gettime(CLOCK_MONOTONIC, &st->start);
        st->s = s;
        st->req.arena = vg_arena_new(16384);
        if (!st->req.arena) {
            vg_free(st);
            return MHD_NO;
        }
        vg_arena_set_limit(st->req.arena, s->o.max_decoded_bytes * 4 + (1 << 20));
        st->req.method = method;
        st->req.path = url;
        st->req.conn = conn;
        st->req.content_type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
        st->handler_label = "other";
        atomic_fetch_add(&s->inflight, 1);
        *con_cls = st;
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        unsigned long long clen = cl ? strtoull(cl, NULL, 10) : 0;
        if (clen > s->o.max_body_bytes) {
            st->too_large = true;
        } else if (clen > 0) {
            /* The body in one allocation rather than grown (and copied) by doubling as
             * it arrives; capped, so that a Content-Length that lies cannot hold much.
             * A failure here is left to the appends below. */
            size_t want = clen < BODY_PRESIZE_MAX ? (size_t)clen : BODY_PRESIZE_MAX;
            if (!vg_buf_reserve(&st->body, want))
                vg_buf_init(&st->body);
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (st->too_large || st->responded)
            return MHD_YES;
        if (st->body.len + n > s->o.max_body_bytes) {
            st->too_large = true;
            return MHD_YES;
        }
        vg_buf_append(&st->body, upload_data, n);
        if (vg_buf_failed(&st->body))
            st->too_large = true;
        return MHD_YES;
    }
    if (st->responded)
        return MHD_YES;
    if (st->too_large) {
        char msg[200];
        snprintf(msg, sizeof msg,
                 "request body is larger than %zu bytes (limits.max_body_bytes)",
                 s->o.max_body_bytes);
        vg_complain(&s->refused_log, 60000, VG_LOG_WARN, "http", "request refused", msg);
        return send_error(conn, st, VG_ETOOLARGE, msg);
    }
    return dispatch(s, conn, st);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    (void)toe;
    struct http_server *s = cls;
    struct req_state *st = *con_cls;
    if (!st)
        return;
    char code[16];
    snprintf(code, sizeof code, "%d", st->responded ? st->status : 0);
    if (s->requests)
        metric_add(s->requests, 1, st->handler_label, code);
    if (s->duration)
        metric_observe(s->duration, elapsed_s(&st->start), st->handler_label);
    if (st->upgrade) { /* the 101 never reached the client: on_upgrade did not run */
        if (st->upgrade_free)
            st->upgrade_free(st->upgrade_cls);
        pthread_mutex_lock(&s->up_lock);
        s->nupgraded--;
        pthread_mutex_unlock(&s->up_lock);
    }
    vg_buf_free(&st->body);
    vg_arena_free(st->req.arena);
    vg_free(st);
    *con_cls = NULL;
    atomic_fetch_sub(&s->inflight, 1);
}

/* ---- upgraded connections ---- */

bool http_upgraded_stopping(const struct http_upgraded *u)
{
    const struct upgrade_run *run = u->priv;
    return atomic_load(&run->s->stopping);
}

static void *upgrade_main(void *arg)
{
    struct upgrade_run *run = arg;
    run->fn(run->cls, &run->u);
    MHD_upgrade_action(run->urh, MHD_UPGRADE_ACTION_CLOSE);
    pthread_mutex_lock(&run->s->up_lock);
    run->s->nupgraded--;
    pthread_mutex_unlock(&run->s->up_lock);
    atomic_store(&run->done, true);
    return NULL;
}

static void run_free(struct upgrade_run *run)
{
    vg_free(run->extra);
    vg_free(run);
}

/* Joins finished runs (all of them when all is set, after they were asked to stop).
 * Called with up_lock held only for the list surgery. */
static void reap_runs(struct http_server *s, bool all)
{
    pthread_mutex_lock(&s->up_lock);
    struct upgrade_run **pp = &s->upgrades, *reap = NULL;
    while (*pp) {
        struct upgrade_run *r = *pp;
        if (all || atomic_load(&r->done)) {
            *pp = r->next;
            r->next = reap;
            reap = r;
        } else {
            pp = &r->next;
        }
    }
    pthread_mutex_unlock(&s->up_lock);
    while (reap) {
        struct upgrade_run *next = reap->next;
        pthread_join(reap->thread, NULL);
        run_free(reap);
        reap = next;
    }
}

static void on_upgrade(void *cls, struct MHD_Connection *conn, void *con_cls,
                       const char *extra_in, size_t extra_in_size, MHD_socket sock,
                       struct MHD_UpgradeResponseHandle *urh)
{
    (void)conn;
    struct http_server *s = cls;
    struct req_state *st = con_cls;
    reap_runs(s, false);
    struct upgrade_run *run = vg_calloc(1, sizeof *run);
    char *extra = extra_in_size ? vg_malloc(extra_in_size) : NULL;
    http_upgrade_fn fn = st->upgrade;
    void (*ufree)(void *) = st->upgrade_free;
    void *ucls = st->upgrade_cls;
    st->upgrade = NULL; /* ours now, whatever happens below */
    st->upgrade_cls = NULL;
    if (run && (extra || !extra_in_size)) {
        if (extra_in_size)
            memcpy(extra, extra_in, extra_in_size);
        *run = (struct upgrade_run){ .s = s, .urh = urh, .fn = fn, .cls = ucls, .extra = extra,
                                     .u = { .fd = sock, .extra = extra, .nextra = extra_in_size,
                                            .priv = run } };
        atomic_init(&run->done, false);
        pthread_mutex_lock(&s->up_lock);
        /* A run may still start while the server stops (its 101 was already sent: it
         * says goodbye at once); closed, checked under the lock of http_stop's last
         * join, keeps any from slipping in unjoined. */
        bool ok = !s->closed && pthread_create(&run->thread, NULL, upgrade_main, run) == 0;
        if (ok) {
            run->next = s->upgrades;
            s->upgrades = run;
        }
        pthread_mutex_unlock(&s->up_lock);
        if (ok)
            return;
    }
    vg_log(VG_LOG_WARN, "http", "upgraded connection not started (server stopped, or no "
           "memory or thread for it)", NULL);
    vg_free(run);
    vg_free(extra);
    if (ufree)
        ufree(ucls);
    MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
    pthread_mutex_lock(&s->up_lock);
    s->nupgraded--;
    pthread_mutex_unlock(&s->up_lock);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t l = strlen(msg);
    while (l && (msg[l - 1] == '\n' || msg[l - 1] == '\r'))
        msg[--l] = '\0';
    vg_log(VG_LOG_DEBUG, "http", "libmicrohttpd", "detail", msg, NULL);
}

struct http_server *http_start(struct vigil *v, const struct http_route *const *routes,
                               size_t nroutes, const struct http_server_opts *o,
                               struct vg_err *err)
{
    struct sockaddr_storage ss = { 0 };
    socklen_t sl;
    if (netaddr_parse(o->addr, SOCK_STREAM, &ss, &sl, err) < 0)
        return NULL;
    struct http_server *s = vg_calloc(1, sizeof *s);
    if (!s) {
        vg_err_set(err, VG_ENOMEM, "out of memory");
        return NULL;
    }
    s->v = v;
    s->routes = routes;
    s->nroutes = nroutes;
    s->o = *o;
    atomic_init(&s->stopping, false);
    pthread_mutex_init(&s->up_lock, NULL);
    if (v && v->metrics) {
        static const char *const hc[] = { "handler", "code" };
        static const char *const h[] = { "handler" };
        s->requests = metrics_family(v->metrics, "vigil_http_requests_total",
                                     "HTTP requests answered, by handler and status code.",
                                     METRIC_COUNTER, hc, 2, NULL, 0);
        s->duration = metrics_family(v->metrics, "vigil_http_request_duration_seconds",
                                     "Time from the first byte of a request to its response, by handler.",
                                     METRIC_HISTOGRAM, h, 1, NULL, 0);
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG | MHD_ALLOW_UPGRADE;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    s->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(o->threads ? o->threads : 4),
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(o->timeout_s ? o->timeout_s : 120),
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_POOL,
                            MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
                            MHD_OPTION_END);
    if (!s->d) {
        vg_err_set(err, VG_EIO, "cannot listen for HTTP on %s (address in use or not permitted)", o->addr);
        pthread_mutex_destroy(&s->up_lock);
        vg_free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : 0;
    return s;
}

unsigned http_port(const struct http_server *s)
{
    return s->port;
}

void http_stop(struct http_server *s)
{
    if (!s)
        return;
    /* Stop accepting, ask upgraded connections to finish and wait for them, then give
     * requests already being read or handled up to 10 s. */
    MHD_quiesce_daemon(s->d);
    atomic_store(&s->stopping, true);
    reap_runs(s, true);
    for (int i = 0; i < 1000 && atomic_load(&s->inflight) > 0; i++)
        usleep(10000);
    pthread_mutex_lock(&s->up_lock);
    s->closed = true;
    pthread_mutex_unlock(&s->up_lock);
    reap_runs(s, true); /* runs that started while the requests above finished */
    MHD_stop_daemon(s->d);
    pthread_mutex_destroy(&s->up_lock);
    vg_free(s);
}
