/* http: the HTTP front end (libmicrohttpd), shared by every HTTP API and receiver.
 *
 * It owns the listening socket and a pool of worker threads, reads each request body up to
 * the configured limit, undoes Content-Encoding gzip/deflate (bounded by the decompressed
 * size limit) and parses query-string and form arguments, then calls the handler of the
 * matching route with a struct http_request. The handler fills a struct http_response;
 * the front end sends it, counts it in /metrics and frees the request's arena when the
 * response completes. Handlers run on worker threads, several at once.
 *
 * Only http.c includes microhttpd.h. */
#ifndef HTTP_H
#define HTTP_H

#include "../storage/base/vg_arena.h"
#include "../storage/base/vg_buf.h"
#include "../storage/base/vg_err.h"
#include "../storage/base/vg_str.h"

#include <stdbool.h>
#include <stddef.h>

struct vigil;

struct http_arg {
    const char *key;   /* percent-decoded */
    const char *value; /* percent-decoded */
};

struct http_request {
    const char *method;            /* "GET", "POST", ... */
    const char *path;              /* URL path without the query string */
    const char *content_type;      /* header value or NULL */
    const char *content_encoding;  /* header value left for the handler (e.g. "snappy"),
                                      NULL once the front end decoded gzip/deflate */
    struct vg_str body;            /* the body, gzip/deflate already undone */
    struct http_arg *args;         /* query string, then form body arguments */
    size_t nargs;
    struct vg_arena *arena;        /* lives until the response is sent */
    void *conn;                    /* opaque, for http_header */
};

struct http_header {
    const char *name;
    const char *value;
};

#define HTTP_MAX_RESP_HEADERS 8

/* ---- protocol upgrade (101 Switching Protocols, used for WebSocket) ----
 * A handler that accepts an upgrade sets status 101, its headers (Upgrade,
 * Sec-WebSocket-Accept, ...; the front end adds Connection: Upgrade) and upgrade,
 * upgrade_free and upgrade_cls (vg_malloc'd by the handler). Once the 101 is on the wire
 * the front end runs upgrade(cls, u) on a thread of its own ("http-upgrade"); the
 * function owns cls and frees it; when it returns the connection is closed. When the
 * 101 cannot be sent (client gone, HTTP/1.0, or more than HTTP_MAX_UPGRADED upgraded
 * connections already open: the client then gets 503) upgrade_free(cls) is called
 * instead. http_stop asks running upgrade functions to return (http_upgraded_stopping)
 * and waits for them before it stops the server. */
#define HTTP_MAX_UPGRADED 32

struct http_upgraded {
    int fd;              /* the connection's socket (non-blocking); do not close it */
    const char *extra;   /* bytes the client sent after the request, before the 101 */
    size_t nextra;
    void *priv;          /* the front end's */
};
typedef void (*http_upgrade_fn)(void *cls, struct http_upgraded *u);
/* True once the server is stopping: the upgrade function should say goodbye and return
 * within a second or so. Thread-safe. */
bool http_upgraded_stopping(const struct http_upgraded *u);

struct http_response {
    int status;                    /* default 200 */
    const char *content_type;      /* default "application/json" */
    struct vg_buf body;            /* freed by the front end */
    struct http_header headers[HTTP_MAX_RESP_HEADERS];
    size_t nheaders;
    http_upgrade_fn upgrade;       /* with status 101; see above */
    void (*upgrade_free)(void *cls);
    void *upgrade_cls;
};

/* A request header value, or NULL. */
const char *http_header_get(struct http_request *req, const char *name);
/* First value of argument key, or NULL. */
const char *http_arg_get(const struct http_request *req, const char *key);
/* Every value of key in order (for repeated args such as match[]); returns the count,
 * storing at most max of them in out. */
size_t http_arg_all(const struct http_request *req, const char *key, const char **out, size_t max);

/* Parses an application/x-www-form-urlencoded body ('+' is a space, %XX a byte,
 * malformed escapes kept literally) into arena-allocated arguments. 0 or VG_ENOMEM. */
int http_form_parse(struct vg_arena *a, const char *s, size_t n, struct http_arg **out,
                    size_t *nout);

/* Adds a response header; name and value must live until the response is sent (literals
 * or arena strings). Silently ignores more than HTTP_MAX_RESP_HEADERS. */
void http_resp_header(struct http_response *resp, const char *name, const char *value);

/* The HTTP status for a vg_code (VG_EINVAL 400, VG_ETOOLARGE 413, ...). The one mapping. */
int http_status_for(int code);
/* Fills resp with a Prometheus-style error body
 * {"status":"error","errorType":"bad_data","error":"<msg>"} and the status for err->code. */
void http_resp_error(struct http_response *resp, const struct vg_err *err);
/* Fills resp with a plain-text error body (for the OTLP and remote-write receivers, whose
 * clients log the body as text). */
void http_resp_error_text(struct http_response *resp, const struct vg_err *err);

typedef void (*http_handler_fn)(struct vigil *v, struct http_request *req,
                                struct http_response *resp);

/* One row of a module's route table. */
struct http_route {
    const char *method;  /* "GET", "POST", or "GET,POST" */
    const char *path;    /* exact path, or a prefix when prefix is true */
    bool prefix;
    http_handler_fn fn;
    const char *handler_label; /* label value in /metrics, e.g. "/api/v1/series" */
};

struct http_server_opts {
    const char *addr;          /* "HOST:PORT"; IPv6 as "[::1]:4318" */
    unsigned threads;          /* worker threads */
    size_t max_body_bytes;     /* compressed, on the wire */
    size_t max_decoded_bytes;  /* after gzip/deflate */
    unsigned timeout_s;        /* idle connection timeout */
};

struct http_server;

/* Starts listening; NULL with err (VG_EIO naming the address) when it cannot bind. routes
 * (n rows, first match wins) must outlive the server; handlers get v. */
struct http_server *http_start(struct vigil *v, const struct http_route *const *routes,
                               size_t nroutes, const struct http_server_opts *o,
                               struct vg_err *err);
/* The port actually bound (useful with port 0 in tests). */
unsigned http_port(const struct http_server *s);
/* Stops accepting, lets in-flight requests finish, frees. Accepts NULL. */
void http_stop(struct http_server *s);

#endif
