/* Tests server/http.c through a real socket: routing, 404/405 bodies, body limits,
 * gzip request bodies, query and form arguments. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../../server/compress.h"
#include "../../../server/http.h"

static void echo_args(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    (void)v;
    resp->content_type = "text/plain";
    for (size_t i = 0; i < req->nargs; i++)
        vg_buf_printf(&resp->body, "%s=%s;", req->args[i].key, req->args[i].value);
    const char *all[4];
    size_t n = http_arg_all(req, "m[]", all, 4);
    vg_buf_printf(&resp->body, "n=%zu", n);
}

static void echo_body(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    (void)v;
    resp->content_type = "text/plain";
    vg_buf_printf(&resp->body, "enc=%s len=%zu body=", req->content_encoding ? req->content_encoding : "-",
                  req->body.len);
    vg_buf_append(&resp->body, req->body.p, req->body.len);
}

static void fail(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    (void)v;
    (void)req;
    struct vg_err err;
    vg_err_set(&err, VG_EINVAL, "bad \"thing\"");
    http_resp_error(resp, &err);
}

static const struct http_route r1 = { "GET,POST", "/args", false, echo_args, "/args" };
static const struct http_route r2 = { "POST", "/body", false, echo_body, "/body" };
static const struct http_route r3 = { "GET", "/fail/", true, fail, "/fail" };
static const struct http_route *const routes[] = { &r1, &r2, &r3 };

static struct http_server *srv;

static void start(void)
{
    struct http_server_opts o = { .addr = "127.0.0.1:0", .threads = 2, .max_body_bytes = 1000,
                                  .max_decoded_bytes = 5000, .timeout_s = 5 };
    struct vg_err err;
    srv = http_start(NULL, routes, 3, &o, &err);
    cr_assert_not_null(srv, "%s", err.msg);
}

static void stop(void)
{
    http_stop(srv);
}

/* Sends raw and returns the whole response (connection closed by us after reading). */
static char *roundtrip(const char *head, const void *body, size_t blen)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)http_port(srv)) };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(write(fd, head, strlen(head)), (ssize_t)strlen(head));
    if (blen)
        cr_assert_eq(write(fd, body, blen), (ssize_t)blen);
    static char buf[65536];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof buf - 1 && (r = read(fd, buf + n, sizeof buf - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = '\0';
    close(fd);
    return buf;
}

TestSuite(http, .init = start, .fini = stop, .timeout = 20);

Test(http, query_arguments_are_decoded_and_repeatable)
{
    char *r = roundtrip("GET /args?m%5B%5D=up&m[]=a%20b&x=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                        NULL, 0);
    cr_assert(strstr(r, "HTTP/1.1 200"), "%s", r);
    cr_assert(strstr(r, "m[]=up;m[]=a b;x=1;n=2"), "%s", r);
}

Test(http, form_bodies_are_arguments_too)
{
    const char *body = "m%5B%5D=up%7Bjob%3D%22a%22%7D&m[]=b+c";
    char head[256];
    snprintf(head, sizeof head,
             "POST /args HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
             "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %zu\r\n\r\n",
             strlen(body));
    char *r = roundtrip(head, body, strlen(body));
    cr_assert(strstr(r, "m[]=up{job=\"a\"};m[]=b c;n=2"), "%s", r);
}

Test(http, unknown_paths_get_a_json_404)
{
    char *r = roundtrip("GET /nope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", NULL, 0);
    cr_assert(strstr(r, "HTTP/1.1 404"), "%s", r);
    cr_assert(strstr(r, "{\"status\":\"error\",\"errorType\":\"not_found\",\"error\":\"no such endpoint: /nope\"}"), "%s", r);
}

Test(http, wrong_method_gets_405)
{
    char *r = roundtrip("GET /body HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", NULL, 0);
    cr_assert(strstr(r, "HTTP/1.1 405"), "%s", r);
    cr_assert(strstr(r, "method GET not allowed for /body (allowed: POST)"), "%s", r);
}

Test(http, handler_errors_are_prometheus_json)
{
    char *r = roundtrip("GET /fail/x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", NULL, 0);
    cr_assert(strstr(r, "HTTP/1.1 400"), "%s", r);
    cr_assert(strstr(r, "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"bad \\\"thing\\\"\"}"), "%s", r);
}

Test(http, oversized_bodies_get_413)
{
    char body[2000];
    memset(body, 'x', sizeof body);
    char *r = roundtrip("POST /body HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 2000\r\n\r\n",
                        body, sizeof body);
    cr_assert(strstr(r, "HTTP/1.1 413"), "%s", r);
    cr_assert(strstr(r, "larger than 1000 bytes (limits.max_body_bytes)"), "%s", r);
}

Test(http, gzip_bodies_are_inflated_and_snappy_left_alone)
{
    struct vg_buf gz;
    vg_buf_init(&gz);
    cr_assert_eq(compress_gzip_encode("hello gzip", 10, &gz, NULL), 0);
    char head[256];
    snprintf(head, sizeof head,
             "POST /body HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Encoding: gzip\r\n"
             "Content-Length: %zu\r\n\r\n", gz.len);
    char *r = roundtrip(head, gz.p, gz.len);
    cr_assert(strstr(r, "enc=- len=10 body=hello gzip"), "%s", r);
    r = roundtrip("POST /body HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Encoding: snappy\r\n"
                  "Content-Length: 3\r\n\r\n", "abc", 3);
    cr_assert(strstr(r, "enc=snappy len=3 body=abc"), "%s", r);
    vg_buf_free(&gz);
}

Test(http, corrupt_gzip_and_gzip_bombs_are_refused)
{
    char *r = roundtrip("POST /body HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Encoding: gzip\r\n"
                        "Content-Length: 5\r\n\r\n", "nogzp", 5);
    cr_assert(strstr(r, "HTTP/1.1 400"), "%s", r);
    cr_assert(strstr(r, "gzip:"), "%s", r);
    static char zeros[100000];
    struct vg_buf gz;
    vg_buf_init(&gz);
    cr_assert_eq(compress_gzip_encode(zeros, sizeof zeros, &gz, NULL), 0);
    cr_assert_lt(gz.len, 1000);
    char head[256];
    snprintf(head, sizeof head,
             "POST /body HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Encoding: gzip\r\n"
             "Content-Length: %zu\r\n\r\n", gz.len);
    r = roundtrip(head, gz.p, gz.len);
    cr_assert(strstr(r, "HTTP/1.1 413"), "%s", r);
    cr_assert(strstr(r, "limits.max_decoded_bytes"), "%s", r);
    vg_buf_free(&gz);
}

/* The connection pool (HTTP_CONN_POOL) bounds the request line and headers: a 32 KiB
 * query is served, a 100 KiB one gets an error status, and the server stays up. */
Test(http, long_urls_up_to_the_pool_are_served)
{
    static char head[110 << 10];
    static char val[100 << 10];
    memset(val, 'a', 32 << 10);
    val[32 << 10] = '\0';
    snprintf(head, sizeof head, "GET /args?x=%s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", val);
    char *r = roundtrip(head, NULL, 0);
    cr_assert(strstr(r, "HTTP/1.1 200"), "%.200s", r);
    cr_assert(strstr(r, val) != NULL);
    memset(val, 'b', (100 << 10) - 1);
    val[(100 << 10) - 1] = '\0';
    snprintf(head, sizeof head, "GET /args?x=%s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", val);
    r = roundtrip(head, NULL, 0);
    cr_assert(strstr(r, "HTTP/1.1 414") || strstr(r, "HTTP/1.1 431"), "%.200s", r);
    r = roundtrip("GET /args?y=2 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", NULL, 0);
    cr_assert(strstr(r, "y=2;"), "%s", r);
}
