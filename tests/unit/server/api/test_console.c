/* Tests server/api/console.c: the header parsers on their own, then the real routes through
 * a real socket (content types, ETag and 304, gzip or identity, client-side routes, 404s),
 * and that no API route of any module is shadowed by the console. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include "../../../../server/api/console.h"
#include "../../../../server/http.h"

/* ---- header parsing ---- */

Test(console, accept_encoding)
{
    cr_assert(console_accepts_gzip("gzip"));
    cr_assert(console_accepts_gzip("gzip, deflate, br"));
    cr_assert(console_accepts_gzip("br;q=1.0, GZIP;q=0.5"));
    cr_assert(console_accepts_gzip("*"));
    cr_assert(console_accepts_gzip("x-gzip"));
    cr_assert_not(console_accepts_gzip(NULL));
    cr_assert_not(console_accepts_gzip(""));
    cr_assert_not(console_accepts_gzip("identity"));
    cr_assert_not(console_accepts_gzip("deflate, br"));
    cr_assert_not(console_accepts_gzip("gzip;q=0"));
    cr_assert_not(console_accepts_gzip("gzip; q=0.000, *"), "explicit refusal beats *");
    cr_assert_not(console_accepts_gzip("*;q=0"));
    cr_assert_not(console_accepts_gzip("gzipx"));
}

Test(console, if_none_match)
{
    cr_assert(console_etag_matches("\"abc\"", "\"abc\""));
    cr_assert(console_etag_matches("W/\"abc\"", "\"abc\""), "weak comparison");
    cr_assert(console_etag_matches("\"x\", \"abc\"", "\"abc\""));
    cr_assert(console_etag_matches("*", "\"abc\""));
    cr_assert_not(console_etag_matches("\"abcd\"", "\"abc\""));
    cr_assert_not(console_etag_matches("\"ab\"", "\"abc\""));
    cr_assert_not(console_etag_matches(NULL, "\"abc\""));
    cr_assert_not(console_etag_matches("", "\"abc\""));
}

Test(console, resolve)
{
    const struct console_asset *index = console_find("/index.html");
    cr_assert_not_null(index);
    cr_assert_str_eq(index->content_type, "text/html; charset=utf-8");
    cr_assert_str_eq(index->cache_control, "no-cache");
    cr_assert_eq(console_resolve("/"), index);
    cr_assert_eq(console_resolve("/explore"), index);
    cr_assert_eq(console_resolve("/traces/4bf92f3577b34da6a3ce929d0e0e4736"), index);
    cr_assert_eq(console_resolve("/status"), index);
    cr_assert_null(console_resolve("/statusx"), "only whole segments are pages");
    cr_assert_null(console_resolve("/nope"));
    cr_assert_null(console_resolve("/static/nope.js"));
    cr_assert_eq(console_resolve("/static/js/app.js"), console_find("/static/js/app.js"));
}

Test(console, every_asset_is_well_formed)
{
    cr_assert_gt(console_nassets, 5);
    bool vendor_js = false;
    for (size_t i = 0; i < console_nassets; i++) {
        const struct console_asset *a = &console_assets[i];
        cr_assert(a->path[0] == '/', "%s", a->path);
        cr_assert(a->etag[0] == '"' && a->etag_gz[0] == '"', "%s", a->path);
        cr_assert_str_neq(a->etag, a->etag_gz, "each encoding has its own ETag");
        /* The gzip bytes inflate to the identity bytes. */
        unsigned char *out = malloc(a->raw_len + 1);
        z_stream z = { 0 };
        cr_assert_eq(inflateInit2(&z, 16 + MAX_WBITS), Z_OK);
        z.next_in = (unsigned char *)a->gz;
        z.avail_in = (uInt)a->gz_len;
        z.next_out = out;
        z.avail_out = (uInt)a->raw_len + 1;
        cr_assert_eq(inflate(&z, Z_FINISH), Z_STREAM_END, "%s", a->path);
        cr_assert_eq(z.total_out, a->raw_len, "%s", a->path);
        cr_assert_eq(memcmp(out, a->raw, a->raw_len), 0, "%s", a->path);
        inflateEnd(&z);
        free(out);
        if (!strncmp(a->path, "/static/vendor/uplot-", 21)) {
            cr_assert(strstr(a->cache_control, "max-age=31536000"), "versioned paths are cached long");
            vendor_js |= strstr(a->path, ".js") != NULL;
        } else {
            cr_assert_str_eq(a->cache_control, "no-cache", "%s", a->path);
        }
        /* The version placeholder never reaches the browser. */
        cr_assert_null(memmem(a->raw, a->raw_len, "__UPLOT_VERSION__", 17), "%s", a->path);
    }
    cr_assert(vendor_js, "uPlot is embedded");
}

/* ---- routing: no API route is shadowed ---- */

static bool matches(const struct http_route *r, const char *path)
{
    return r->prefix ? !strncmp(path, r->path, strlen(r->path)) : !strcmp(path, r->path);
}

Test(console, is_last_and_shadows_no_api_route)
{
    cr_assert_eq(vigil_modules[vigil_nmodules - 1], &mod_console, "the console is routed last");
    for (size_t m = 0; m + 1 < vigil_nmodules; m++) {
        const struct vigil_module *mod = vigil_modules[m];
        for (size_t i = 0; i < mod->nroutes; i++) {
            const struct http_route *api = &mod->routes[i];
            char sample[512];
            snprintf(sample, sizeof sample, "%s%s", api->path, api->prefix ? "x/y" : "");
            for (size_t c = 0; c < mod_console.nroutes; c++) {
                const struct http_route *con = &mod_console.routes[c];
                /* A console route matching an API path would answer index.html where the
                 * API's 405 belongs (wrong method); one an API route matches never runs. */
                cr_assert_not(matches(con, sample), "console route %s matches %s's %s",
                              con->path, mod->name, api->path);
                cr_assert_not(matches(api, con->path), "%s's %s swallows the console's %s",
                              mod->name, api->path, con->path);
            }
        }
    }
}

/* ---- through a socket ---- */

static struct http_server *srv;

static void start(void)
{
    static const struct http_route *routes[32];
    cr_assert_leq(mod_console.nroutes, 32);
    for (size_t i = 0; i < mod_console.nroutes; i++)
        routes[i] = &mod_console.routes[i];
    struct http_server_opts o = { .addr = "127.0.0.1:0", .threads = 2, .max_body_bytes = 1000,
                                  .max_decoded_bytes = 5000, .timeout_s = 5 };
    struct vg_err err;
    srv = http_start(NULL, routes, mod_console.nroutes, &o, &err);
    cr_assert_not_null(srv, "%s", err.msg);
}

static void stop(void)
{
    http_stop(srv);
}

/* GET path with extra header lines; returns the whole response (static buffer). */
static char *get(const char *path, const char *headers, size_t *len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)http_port(srv)) };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    char req[1024];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n%s\r\n",
                     path, headers ? headers : "");
    cr_assert_eq(write(fd, req, (size_t)n), n);
    static char buf[1 << 20];
    size_t got = 0;
    ssize_t r;
    while (got < sizeof buf - 1 && (r = read(fd, buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)r;
    buf[got] = '\0';
    close(fd);
    if (len)
        *len = got;
    return buf;
}

/* The value of a response header (case-insensitive name), copied; "" when absent. */
static const char *hdr(const char *resp, const char *name)
{
    static char v[256];
    v[0] = '\0';
    char pat[64];
    snprintf(pat, sizeof pat, "\r\n%s: ", name);
    const char *p = strcasestr(resp, pat);
    if (p) {
        p += strlen(pat);
        size_t l = strcspn(p, "\r\n");
        snprintf(v, sizeof v, "%.*s", (int)l, p);
    }
    return v;
}

static const char *body_of(const char *resp)
{
    const char *b = strstr(resp, "\r\n\r\n");
    return b ? b + 4 : "";
}

TestSuite(console_http, .init = start, .fini = stop, .timeout = 20);

Test(console_http, content_types)
{
    struct { const char *path, *type; } cases[] = {
        { "/", "text/html; charset=utf-8" },
        { "/static/css/console.css", "text/css; charset=utf-8" },
        { "/static/js/app.js", "text/javascript; charset=utf-8" },
        { "/static/favicon.svg", "image/svg+xml" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *r = get(cases[i].path, NULL, NULL);
        cr_assert(strstr(r, "HTTP/1.1 200"), "%s: %.200s", cases[i].path, r);
        cr_assert_str_eq(hdr(r, "Content-Type"), cases[i].type, "%s", cases[i].path);
        cr_assert_str_eq(hdr(r, "X-Content-Type-Options"), "nosniff");
        cr_assert_str_eq(hdr(r, "Vary"), "Accept-Encoding");
    }
}

Test(console_http, identity_without_accept_encoding)
{
    const struct console_asset *a = console_find("/static/js/app.js");
    size_t len;
    char *r = get("/static/js/app.js", NULL, &len);
    cr_assert_str_eq(hdr(r, "Content-Encoding"), "");
    cr_assert_str_eq(hdr(r, "ETag"), a->etag);
    cr_assert_str_eq(hdr(r, "Cache-Control"), "no-cache");
    const char *b = body_of(r);
    cr_assert_eq(len - (size_t)(b - r), a->raw_len);
    cr_assert_eq(memcmp(b, a->raw, a->raw_len), 0);
}

Test(console_http, gzip_when_accepted)
{
    const struct console_asset *a = console_find("/static/js/app.js");
    size_t len;
    char *r = get("/static/js/app.js", "Accept-Encoding: gzip, deflate\r\n", &len);
    cr_assert_str_eq(hdr(r, "Content-Encoding"), "gzip");
    cr_assert_str_eq(hdr(r, "ETag"), a->etag_gz);
    const char *b = body_of(r);
    cr_assert_eq(len - (size_t)(b - r), a->gz_len);
    cr_assert_eq(memcmp(b, a->gz, a->gz_len), 0);
    r = get("/static/js/app.js", "Accept-Encoding: gzip;q=0, br\r\n", NULL);
    cr_assert_str_eq(hdr(r, "Content-Encoding"), "", "q=0 refuses gzip");
}

Test(console_http, etag_gives_304)
{
    const struct console_asset *a = console_find("/index.html");
    char h[256];
    snprintf(h, sizeof h, "If-None-Match: %s\r\n", a->etag);
    size_t len;
    char *r = get("/", h, &len);
    cr_assert(strstr(r, "HTTP/1.1 304"), "%.200s", r);
    cr_assert_str_eq(hdr(r, "ETag"), a->etag);
    cr_assert_str_eq(body_of(r), "", "no body with 304");
    /* The identity ETag does not validate the gzip representation. */
    snprintf(h, sizeof h, "If-None-Match: %s\r\nAccept-Encoding: gzip\r\n", a->etag);
    r = get("/", h, NULL);
    cr_assert(strstr(r, "HTTP/1.1 200"), "%.200s", r);
    snprintf(h, sizeof h, "If-None-Match: \"other\", %s\r\nAccept-Encoding: gzip\r\n", a->etag_gz);
    r = get("/explore?q=up", h, NULL);
    cr_assert(strstr(r, "HTTP/1.1 304"), "%.200s", r);
    r = get("/", "If-None-Match: \"stale\"\r\n", NULL);
    cr_assert(strstr(r, "HTTP/1.1 200"), "%.200s", r);
}

Test(console_http, client_side_routes_get_index)
{
    const struct console_asset *a = console_find("/index.html");
    const char *paths[] = { "/explore", "/explore?q=up&range=1h", "/traces/4bf92f3577b34da6a3ce929d0e0e4736",
                            "/logs", "/errors/0d17bb2244a3daf8", "/status", "/services", "/alerts" };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        char *r = get(paths[i], NULL, NULL);
        cr_assert(strstr(r, "HTTP/1.1 200"), "%s: %.200s", paths[i], r);
        cr_assert_str_eq(hdr(r, "ETag"), a->etag, "%s", paths[i]);
        cr_assert(strstr(body_of(r), "<!doctype html>"), "%s", paths[i]);
    }
}

Test(console_http, misses_are_404)
{
    char *r = get("/static/js/missing.js", NULL, NULL);
    cr_assert(strstr(r, "HTTP/1.1 404"), "%.200s", r);
    cr_assert(strstr(r, "no such file: /static/js/missing.js"), "%s", r);
    r = get("/statusx", NULL, NULL);
    cr_assert(strstr(r, "HTTP/1.1 404"), "%.200s", r);
    cr_assert(strstr(r, "no such endpoint: /statusx"), "%s", r);
    r = get("/nothing-here", NULL, NULL);
    cr_assert(strstr(r, "HTTP/1.1 404"), "not a console route: %.200s", r);
}

Test(console_http, vendored_library_is_cached_long)
{
    for (size_t i = 0; i < console_nassets; i++) {
        if (strncmp(console_assets[i].path, "/static/vendor/", 15))
            continue;
        char *r = get(console_assets[i].path, NULL, NULL);
        cr_assert(strstr(r, "HTTP/1.1 200"), "%s", console_assets[i].path);
        cr_assert_str_eq(hdr(r, "Cache-Control"), "public, max-age=31536000, immutable");
    }
}
