/* console: see console.h. Serving is a table look-up: the bytes, both encodings and both
 * ETags were made at build time, so a request costs one copy of the chosen bytes into
 * the response body. */
#include "console.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define STATIC_PREFIX "/static/"
#define INDEX_PATH "/index.html"

static const char *const pages[] = { CONSOLE_PAGES };
#define NPAGES (sizeof pages / sizeof pages[0])

const struct console_asset *console_find(const char *path)
{
    for (size_t i = 0; i < console_nassets; i++)
        if (!strcmp(console_assets[i].path, path))
            return &console_assets[i];
    return NULL;
}

/* True when path is "/<page>" or "/<page>/..." for a console page. */
static bool is_page(const char *path)
{
    if (path[0] != '/')
        return false;
    for (size_t i = 0; i < NPAGES; i++) {
        size_t l = strlen(pages[i]);
        if (!strncmp(path + 1, pages[i], l) && (path[1 + l] == '\0' || path[1 + l] == '/'))
            return true;
    }
    return false;
}

const struct console_asset *console_resolve(const char *path)
{
    if (!strcmp(path, "/") || is_page(path))
        return console_find(INDEX_PATH);
    if (!strncmp(path, STATIC_PREFIX, strlen(STATIC_PREFIX)))
        return console_find(path);
    return NULL;
}

/* ---- header parsing (RFC 9110 lists: tokens separated by commas, parameters by ';') ---- */

/* The q of one list element's parameters ("; q=0.5"); 1 when absent or malformed. */
static double element_q(const char *p, const char *end)
{
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        if (!semi)
            break;
        p = semi + 1;
        while (p < end && isspace((unsigned char)*p))
            p++;
        if (end - p >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
            char num[16];
            size_t n = 0;
            for (const char *s = p + 2; s < end && *s != ';' && n < sizeof num - 1; s++)
                num[n++] = *s;
            num[n] = '\0';
            char *stop;
            double q = strtod(num, &stop);
            return stop == num ? 1.0 : q;
        }
    }
    return 1.0;
}

bool console_accepts_gzip(const char *ae)
{
    if (!ae)
        return false;
    int gzip = -1, star = -1; /* -1 absent, 0 refused, 1 accepted */
    const char *p = ae;
    while (*p) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        while (p < end && isspace((unsigned char)*p))
            p++;
        size_t tl = 0;
        while (p + tl < end && p[tl] != ';' && !isspace((unsigned char)p[tl]))
            tl++;
        int ok = element_q(p + tl, end) > 0 ? 1 : 0;
        if ((tl == 4 && !strncasecmp(p, "gzip", 4)) || (tl == 6 && !strncasecmp(p, "x-gzip", 6)))
            gzip = ok;
        else if (tl == 1 && *p == '*')
            star = ok;
        if (!comma)
            break;
        p = comma + 1;
    }
    return gzip == 1 || (gzip == -1 && star == 1);
}

bool console_etag_matches(const char *inm, const char *etag)
{
    if (!inm || !etag)
        return false;
    size_t el = strlen(etag);
    const char *p = inm;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            return false;
        if (*p == '*')
            return true;
        if (!strncmp(p, "W/", 2)) /* If-None-Match compares weakly (RFC 9110 13.1.2) */
            p += 2;
        if (!strncmp(p, etag, el) && (p[el] == '\0' || p[el] == ',' || p[el] == ' ' ||
                                      p[el] == '\t'))
            return true;
        const char *comma = strchr(p, ',');
        if (!comma)
            return false;
        p = comma + 1;
    }
}

/* ---- the handler ---- */

static const char *header(struct http_request *req, const char *name)
{
    return req->conn ? http_header_get(req, name) : NULL;
}

static void serve(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    (void)v;
    const struct console_asset *a = console_resolve(req->path);
    if (!a) {
        struct vg_err err;
        if (!strncmp(req->path, STATIC_PREFIX, strlen(STATIC_PREFIX)))
            vg_err_set(&err, VG_ENOTFOUND, "no such file: %.200s", req->path);
        else /* "/logsx": what the front end says for any unknown path */
            vg_err_set(&err, VG_ENOTFOUND, "no such endpoint: %.200s", req->path);
        http_resp_error(resp, &err);
        return;
    }
    bool gz = console_accepts_gzip(header(req, "Accept-Encoding"));
    const char *etag = gz ? a->etag_gz : a->etag;
    resp->content_type = a->content_type;
    http_resp_header(resp, "ETag", etag);
    http_resp_header(resp, "Cache-Control", a->cache_control);
    http_resp_header(resp, "Vary", "Accept-Encoding");
    http_resp_header(resp, "X-Content-Type-Options", "nosniff");
    if (console_etag_matches(header(req, "If-None-Match"), etag)) {
        resp->status = 304;
        return;
    }
    if (gz)
        http_resp_header(resp, "Content-Encoding", "gzip");
    vg_buf_append(&resp->body, gz ? a->gz : a->raw, gz ? a->gz_len : a->raw_len);
    if (vg_buf_failed(&resp->body)) {
        vg_buf_free(&resp->body);
        resp->nheaders = 0;
        struct vg_err err;
        vg_err_set(&err, VG_ENOMEM, "out of memory while sending %.200s", a->path);
        http_resp_error(resp, &err);
    }
}

/* Exact "/" and the static prefix; each page is a prefix route whose boundary serve()
 * checks. None of these paths is used by an API (tests/unit/server/api/test_console.c
 * checks every module's routes). */
static const struct http_route routes[] = {
    { "GET", "/", false, serve, "/" },
    { "GET", STATIC_PREFIX, true, serve, "/static" },
    { "GET", "/explore", true, serve, "/{console page}" },
    { "GET", "/logs", true, serve, "/{console page}" },
    { "GET", "/traces", true, serve, "/{console page}" },
    { "GET", "/services", true, serve, "/{console page}" },
    { "GET", "/errors", true, serve, "/{console page}" },
    { "GET", "/alerts", true, serve, "/{console page}" },
    { "GET", "/status", true, serve, "/{console page}" },
};

const struct vigil_module mod_console = {
    .name = "console",
    .routes = routes,
    .nroutes = sizeof routes / sizeof routes[0],
};
