/* Tests server/api/loki_tail.c end to end through the HTTP front end's upgrade hook
 * (http.c) on a real socket: the RFC 6455 handshake, the first frame with the history
 * since start, a live entry pushed afterwards, ping/pong, a clean close started by the
 * client, the close the server sends when it stops, and the refusals before the
 * upgrade (not a WebSocket request, delay_for too large, a metric query). */
#include "loki_fixture.h"

#include "../../../../server/api/loki_tail.h"
#include "../../../../server/api/websocket.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#define NS 1000000000LL
#define KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

static struct http_server *srv;
static const struct http_route *routes[32];

static void setup(void)
{
    lf_open();
    for (size_t i = 0; i < mod_loki_api.nroutes; i++)
        routes[i] = &mod_loki_api.routes[i];
    struct http_server_opts o = { .addr = "127.0.0.1:0", .threads = 2, .max_body_bytes = 1 << 20,
                                  .max_decoded_bytes = 1 << 20, .timeout_s = 10 };
    struct vg_err err;
    srv = http_start(&lf.v, routes, mod_loki_api.nroutes, &o, &err);
    cr_assert_not_null(srv, "%s", err.msg);
}

static void teardown(void)
{
    http_stop(srv);
    srv = NULL;
    lf_close();
}

TestSuite(loki_tail, .init = setup, .fini = teardown, .timeout = 60);

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)http_port(srv)) };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static char inbuf[1 << 16];
static size_t inlen;

/* Reads until the buffer holds needle or the time is up; false on timeout or EOF. */
static bool read_until(int fd, const char *needle, int ms)
{
    for (int waited = 0; waited < ms; waited += 50) {
        inbuf[inlen] = '\0';
        if (strstr(inbuf, needle))
            return true;
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 50) > 0) {
            ssize_t n = read(fd, inbuf + inlen, sizeof inbuf - 1 - inlen);
            if (n <= 0)
                return false;
            inlen += (size_t)n;
        }
    }
    return false;
}

/* Sends the handshake for query string qs; returns the socket with the 101 read. */
static int open_tail(const char *qs)
{
    int fd = dial();
    char req[1024];
    snprintf(req, sizeof req,
             "GET /loki/api/v1/tail?%s HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
             "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: " KEY "\r\n"
             "Sec-WebSocket-Version: 13\r\n\r\n",
             qs);
    cr_assert_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    inlen = 0;
    cr_assert(read_until(fd, "\r\n\r\n", 5000), "no handshake answer: %s", inbuf);
    cr_assert(strstr(inbuf, "HTTP/1.1 101"), "%s", inbuf);
    cr_assert(strstr(inbuf, "Sec-WebSocket-Accept: " ACCEPT "\r\n"), "%s", inbuf);
    cr_assert(strcasestr(inbuf, "Upgrade: websocket"), "%s", inbuf);
    char *end = strstr(inbuf, "\r\n\r\n") + 4;
    inlen -= (size_t)(end - inbuf);
    memmove(inbuf, end, inlen);
    return fd;
}

/* The next server frame (unmasked); its payload NUL-terminated in a static buffer. */
static struct ws_frame next_frame(int fd, int ms)
{
    static char payload[1 << 16];
    struct ws_frame f;
    struct vg_err err;
    for (int waited = 0;; waited += 50) {
        size_t used;
        int rc = ws_frame_decode((uint8_t *)inbuf, inlen, sizeof payload - 1, false, &f, &used,
                                 &err);
        cr_assert_geq(rc, 0, "%s", err.msg);
        if (rc == 1) {
            memcpy(payload, f.payload, f.len);
            payload[f.len] = '\0';
            f.payload = (uint8_t *)payload;
            memmove(inbuf, inbuf + used, inlen - used);
            inlen -= used;
            return f;
        }
        cr_assert_lt(waited, ms, "no frame within %d ms", ms);
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 50) > 0) {
            ssize_t n = read(fd, inbuf + inlen, sizeof inbuf - inlen);
            cr_assert_gt(n, 0, "connection closed while waiting for a frame");
            inlen += (size_t)n;
        }
    }
}

/* A masked client frame. */
static void send_frame(int fd, unsigned op, const void *p, size_t n)
{
    uint8_t b[256];
    const uint8_t key[4] = { 1, 2, 3, 4 };
    cr_assert_lt(n, 126);
    b[0] = (uint8_t)(0x80 | op);
    b[1] = (uint8_t)(0x80 | n);
    memcpy(b + 2, key, 4);
    for (size_t i = 0; i < n; i++)
        b[6 + i] = ((const uint8_t *)p)[i] ^ key[i & 3];
    cr_assert_eq(write(fd, b, 6 + n), (ssize_t)(6 + n));
}

Test(loki_tail, history_live_ping_and_close)
{
    int64_t now = loki_now_ns();
    lf_push(now - 5 * NS, "app=web", NULL, "before the tail");
    lf_push(now - 4 * NS, "app=other", NULL, "not selected");
    int fd = open_tail("query=%7Bapp%3D%22web%22%7D&limit=10");
    struct ws_frame f = next_frame(fd, 5000);
    cr_assert_eq(f.op, WS_OP_TEXT);
    json_error_t je;
    lf_json = json_loads((const char *)f.payload, 0, &je);
    lf_resp.body.p = (char *)f.payload;
    cr_assert_not_null(lf_json, "%s", f.payload);
    cr_assert_eq(lf_len("streams"), 1);
    cr_assert_str_eq(lf_str("streams/0/stream/app"), "web");
    cr_assert_str_eq(lf_str("streams/0/values/0/1"), "before the tail");
    cr_assert(json_is_null(lf_at("dropped_entries")));
    json_decref(lf_json);
    lf_json = NULL;

    /* A live entry, with a timestamp a little in the past (caught by the late window). */
    lf_push(loki_now_ns() - 500000000LL, "app=web", NULL, "live one");
    f = next_frame(fd, 5000);
    cr_assert(strstr((const char *)f.payload, "\"live one\""), "%s", f.payload);
    cr_assert_null(strstr((const char *)f.payload, "before the tail"), "sent once");

    send_frame(fd, WS_OP_PING, "hb", 2);
    f = next_frame(fd, 3000);
    cr_assert_eq(f.op, WS_OP_PONG);
    cr_assert_str_eq((const char *)f.payload, "hb");

    send_frame(fd, WS_OP_CLOSE, "\x03\xe8", 2);
    f = next_frame(fd, 3000);
    cr_assert_eq(f.op, WS_OP_CLOSE);
    cr_assert_eq(f.len, 2);
    cr_assert_eq(f.payload[0] << 8 | f.payload[1], 1000);
    char c;
    struct pollfd p = { .fd = fd, .events = POLLIN };
    cr_assert_gt(poll(&p, 1, 3000), 0);
    cr_assert_eq(read(fd, &c, 1), 0, "the server closes the connection");
    close(fd);
    lf_resp.body.p = NULL;
}

Test(loki_tail, server_stop_says_going_away)
{
    int fd = open_tail("query=%7Bapp%3D%22web%22%7D&delay_for=1");
    http_stop(srv);
    srv = NULL;
    struct ws_frame f = next_frame(fd, 5000);
    cr_assert_eq(f.op, WS_OP_CLOSE);
    cr_assert_eq(f.payload[0] << 8 | f.payload[1], 1001);
    close(fd);
}

static const char *plain_get(const char *target, const char *extra_headers)
{
    int fd = dial();
    char req[1024];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n%s\r\n", target,
             extra_headers);
    cr_assert_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    inlen = 0;
    read_until(fd, "\x01never", 2000);
    close(fd);
    return inbuf;
}

Test(loki_tail, refusals_before_the_upgrade)
{
    const char *ws = "Upgrade: websocket\r\nSec-WebSocket-Key: " KEY "\r\n"
                     "Sec-WebSocket-Version: 13\r\n";
    const char *r = plain_get("/loki/api/v1/tail?query=%7Bapp%3D%22web%22%7D", "");
    cr_assert(strstr(r, "HTTP/1.1 400"), "%s", r);
    cr_assert(strstr(r, "'upgrade' token not found in 'Connection' header"), "%s", r);
    r = plain_get("/loki/api/v1/tail?query=%7Bapp%3D%22web%22%7D&delay_for=6", ws);
    cr_assert(strstr(r, "delay_for can't be greater than 5"), "%s", r);
    r = plain_get("/loki/api/v1/tail?query=rate(%7Bapp%3D%22web%22%7D%5B1m%5D)", ws);
    cr_assert(strstr(r, "tail is only supported for log queries"), "%s", r);
    r = plain_get("/loki/api/v1/tail?query=%7Bapp", ws);
    cr_assert(strstr(r, "HTTP/1.1 400"), "%s", r);
    cr_assert(strstr(r, "parse error"), "%s", r);
}
