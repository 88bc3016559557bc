/* bench_load: what the push load generators (loggen, spangen) share: a loopback-only
 * HTTP/1.1 client for keep-alive POSTs and a driver that sends requests from K threads
 * and reports acknowledged items, bytes and request latencies.
 *
 * The driver asks a generator for the i-th request of thread k (next), hands it to a
 * transport (send) and counts it as acknowledged when the transport says so. Requests
 * are never retried: a benchmark that retries hides the refusals it should report, so a
 * failure is counted and the first one's reason printed. The whole run is bounded by a
 * deadline. Static inline: each program includes it once.
 *
 * Output of bench_load_report (one line for scripts, after human-readable ones):
 *   "RESULT items=<n> items_per_sec=<f> bytes=<n> mb_per_sec=<f> requests=<n> failed=<n>
 *    p50_ms=<f> p99_ms=<f> elapsed_s=<f>"  (MB = 10^6 bytes). */
#ifndef BENCH_LOAD_H
#define BENCH_LOAD_H

#include "bench_util.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* splitmix64's finaliser: the generators' data is a pure function of an index. */
static inline uint64_t bench_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* A const pointer as a mutable one, for library structs (iovec, protobuf-c messages)
 * whose members are not const although nothing writes through them. */
static inline void *bench_unconst(const void *p)
{
    void *q;
    memcpy(&q, &p, sizeof q);
    return q;
}

/* ---- loopback HTTP/1.1 client ---- */

struct bench_http {
    char host[128], port[16];
    int timeout_ms;
    int fd;
    char rb[16384];
    size_t off, len;
};

/* Splits "http://HOST[:PORT]/path" into c's host and port (80 when absent) and path (cap
 * bytes); HOST may be a bracketed IPv6 address ("[::1]"). -1 if the URL has another
 * shape. The host must resolve to a loopback address at connect time. */
static inline int bench_http_url(struct bench_http *c, const char *url, char *path, size_t cap)
{
    if (strncmp(url, "http://", 7) != 0)
        return -1;
    const char *h = url + 7, *slash = strchr(h, '/');
    const char *hend = slash ? slash : h + strlen(h), *hostend, *colon;
    if (*h == '[') {
        const char *rb = memchr(h, ']', (size_t)(hend - h));
        if (!rb)
            return -1;
        h++;
        hostend = rb;
        colon = rb + 1 < hend && rb[1] == ':' ? rb + 1 : NULL;
        if (!colon && rb + 1 != hend)
            return -1;
    } else {
        colon = memchr(h, ':', (size_t)(hend - h));
        hostend = colon ? colon : hend;
    }
    if (hostend == h || (size_t)(hostend - h) >= sizeof c->host)
        return -1;
    memcpy(c->host, h, (size_t)(hostend - h));
    c->host[hostend - h] = 0;
    size_t pl = colon ? (size_t)(hend - colon - 1) : 2;
    if (pl == 0 || pl >= sizeof c->port)
        return -1;
    memcpy(c->port, colon ? colon + 1 : "80", pl);
    c->port[pl] = 0;
    if (snprintf(path, cap, "%s", slash ? slash : "/") >= (int)cap)
        return -1;
    c->fd = -1;
    c->off = c->len = 0;
    if (!c->timeout_ms)
        c->timeout_ms = 60000;
    return 0;
}

static inline bool bench_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr) >> 24 == 127;
    if (sa->sa_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr);
    return false;
}

static inline int bench_http_connect(struct bench_http *c)
{
    struct addrinfo hints = { 0 }, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(c->host, c->port, &hints, &res) != 0 || !res)
        return -1;
    c->fd = -1;
    for (struct addrinfo *ai = res; ai && c->fd < 0; ai = ai->ai_next) {
        if (!bench_is_loopback(ai->ai_addr))
            continue; /* never load anything but this machine */
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        struct timeval tv = { c->timeout_ms / 1000, (suseconds_t)(c->timeout_ms % 1000) * 1000 };
        int one = 1;
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            c->fd = fd;
        else
            close(fd);
    }
    freeaddrinfo(res);
    c->off = c->len = 0;
    return c->fd < 0 ? -1 : 0;
}

static inline void bench_http_close(struct bench_http *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

static inline int bench_http_fill(struct bench_http *c)
{
    if (c->off > 0) {
        memmove(c->rb, c->rb + c->off, c->len - c->off);
        c->len -= c->off;
        c->off = 0;
    }
    if (c->len == sizeof c->rb)
        return -1;
    ssize_t n;
    do
        n = read(c->fd, c->rb + c->len, sizeof c->rb - c->len);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return -1;
    c->len += (size_t)n;
    return 0;
}

/* One CRLF- or LF-terminated line into out (NUL-terminated, truncated to cap - 1). */
static inline int bench_http_line(struct bench_http *c, char *out, size_t cap)
{
    for (int guard = 0; guard < 64; guard++) {
        char *nl = memchr(c->rb + c->off, '\n', c->len - c->off);
        if (nl) {
            size_t n = (size_t)(nl - (c->rb + c->off));
            size_t m = n > 0 && nl[-1] == '\r' ? n - 1 : n;
            m = m < cap ? m : cap - 1;
            memcpy(out, c->rb + c->off, m);
            out[m] = 0;
            c->off += n + 1;
            return 0;
        }
        if (bench_http_fill(c) < 0)
            return -1;
    }
    return -1;
}

/* Reads n body bytes, keeping the first ones in keep (NUL-terminated, *kept so far). */
static inline int bench_http_body(struct bench_http *c, size_t n, char *keep, size_t cap,
                                  size_t *kept)
{
    while (n > 0) {
        if (c->off == c->len && bench_http_fill(c) < 0)
            return -1;
        size_t take = c->len - c->off < n ? c->len - c->off : n;
        size_t k = *kept + 1 < cap ? cap - 1 - *kept : 0;
        k = k < take ? k : take;
        memcpy(keep + *kept, c->rb + c->off, k);
        *kept += k;
        keep[*kept] = 0;
        c->off += take;
        n -= take;
    }
    return 0;
}

static inline int bench_http_write(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(fd, iov, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

/* POSTs body to path with the extra header lines given (each ending in CRLF), connecting
 * first when needed, and reads the whole answer. Returns the HTTP status, or -1 on a
 * transport error (the connection is then closed). The start of the response body is
 * left in msg. */
static inline int bench_http_post(struct bench_http *c, const char *path, const char *headers,
                                  const void *body, size_t len, char *msg, size_t msgcap)
{
    char head[1024], line[1024];
    msg[0] = 0;
    if (c->fd < 0 && bench_http_connect(c) < 0)
        return -1;
    int hl = snprintf(head, sizeof head,
                      "POST %s HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: vigil-bench/0.1\r\n%s"
                      "Content-Length: %zu\r\n\r\n",
                      path, c->host, c->port, headers, len);
    struct iovec iov[2] = { { head, (size_t)hl }, { bench_unconst(body), len } };
    long long clen = -1;
    bool chunked = false, close_after = false;
    size_t kept = 0;
    if (hl <= 0 || (size_t)hl >= sizeof head || bench_http_write(c->fd, iov, 2) < 0 ||
        bench_http_line(c, line, sizeof line) < 0 || strncmp(line, "HTTP/1.", 7) != 0 ||
        strlen(line) < 12)
        goto fail;
    int status = (int)strtol(line + 9, NULL, 10);
    for (int h = 0; h < 100; h++) {
        if (bench_http_line(c, line, sizeof line) < 0)
            goto fail;
        if (!line[0])
            break;
        if (!strncasecmp(line, "content-length:", 15))
            clen = strtoll(line + 15, NULL, 10);
        else if (!strncasecmp(line, "transfer-encoding:", 18) && strcasestr(line, "chunked"))
            chunked = true;
        else if (!strncasecmp(line, "connection:", 11) && strcasestr(line, "close"))
            close_after = true;
    }
    for (int guard = 0; chunked && guard < 100000; guard++) {
        if (bench_http_line(c, line, sizeof line) < 0)
            goto fail;
        size_t n = strtoul(line, NULL, 16);
        if (bench_http_body(c, n, msg, msgcap, &kept) < 0 ||
            bench_http_line(c, line, sizeof line) < 0)
            goto fail;
        if (n == 0)
            break;
    }
    if (!chunked && clen > 0 && bench_http_body(c, (size_t)clen, msg, msgcap, &kept) < 0)
        goto fail;
    if (!chunked && clen < 0 && status >= 200 && status != 204 && status != 304)
        close_after = true; /* a body that runs until close: not needed */
    if (close_after)
        bench_http_close(c);
    return status;
fail:
    bench_http_close(c);
    return -1;
}

/* ---- the K-thread driver ---- */

struct bench_req;

struct bench_req {
    const void *body;
    size_t len;
    uint64_t items; /* lines or spans in it */
    uint64_t bytes; /* payload bytes counted for MB/s (log text), 0 if not meaningful */
};

struct bench_load {
    int threads;
    uint64_t requests;    /* in all; thread k sends k, k + threads, ... */
    double max_seconds;   /* the run stops sending after this */
    void *gen;            /* for next */
    /* Fills r with request i for thread k (built into per-thread memory or taken from
     * a pre-encoded table); 0, or -1 to stop the thread. */
    int (*next)(void *gen, int k, uint64_t i, struct bench_req *r);
    void *tr;             /* for the transport */
    void *(*open)(void *tr, int k);              /* per-thread connection state */
    /* Sends r; true when acknowledged, else false with a reason in msg. */
    bool (*send)(void *conn, const struct bench_req *r, char *msg, size_t cap);
    void (*close)(void *conn);
    /* results */
    uint64_t items, bytes, acked, failed;
    double elapsed_s;
    double *lat_ms; /* acknowledged requests' latencies, sorted after the run */
    size_t nlat;
};

struct bench_worker {
    struct bench_load *l;
    int k;
    uint64_t items, bytes, acked, failed;
    double *lat;
    size_t nlat;
    pthread_t th;
};

static pthread_mutex_t bench_load_mu = PTHREAD_MUTEX_INITIALIZER;

static inline void *bench_worker_main(void *arg)
{
    struct bench_worker *w = arg;
    struct bench_load *l = w->l;
    void *conn = l->open(l->tr, w->k);
    double deadline = bench_now_s() + l->max_seconds;
    bool reported = false;
    char msg[512];
    for (uint64_t i = (uint64_t)w->k; conn && i < l->requests; i += (uint64_t)l->threads) {
        struct bench_req r;
        if (bench_now_s() > deadline || l->next(l->gen, w->k, i, &r) < 0)
            break;
        double t0 = bench_now_s();
        if (l->send(conn, &r, msg, sizeof msg)) {
            w->lat[w->nlat++] = (bench_now_s() - t0) * 1000;
            w->items += r.items;
            w->bytes += r.bytes;
            w->acked++;
            continue;
        }
        w->failed++;
        if (!reported) {
            reported = true;
            pthread_mutex_lock(&bench_load_mu);
            fprintf(stderr, "thread %d request %llu refused: %.300s\n", w->k,
                    (unsigned long long)i, msg);
            pthread_mutex_unlock(&bench_load_mu);
        }
    }
    if (conn)
        l->close(conn);
    else
        w->failed++;
    return NULL;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v. */
static inline double bench_pct(const double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(p * (double)n + 0.999999);
    return v[i == 0 ? 0 : (i > n ? n : i) - 1];
}

/* Runs the load; 0, or -1 when threads could not start. */
static inline int bench_load_run(struct bench_load *l)
{
    struct bench_worker *ws = calloc((size_t)l->threads, sizeof *ws);
    l->lat_ms = calloc(l->requests ? l->requests : 1, sizeof *l->lat_ms);
    if (!ws || !l->lat_ms) {
        free(ws);
        return -1;
    }
    double t0 = bench_now_s();
    int started = 0;
    for (int k = 0; k < l->threads; k++) {
        ws[k] = (struct bench_worker){ .l = l, .k = k };
        ws[k].lat = calloc(l->requests / (uint64_t)l->threads + 1, sizeof *ws[k].lat);
        if (!ws[k].lat || pthread_create(&ws[k].th, NULL, bench_worker_main, &ws[k]) != 0)
            break;
        started++;
    }
    for (int k = 0; k < started; k++) {
        pthread_join(ws[k].th, NULL);
        l->items += ws[k].items;
        l->bytes += ws[k].bytes;
        l->acked += ws[k].acked;
        l->failed += ws[k].failed;
        memcpy(l->lat_ms + l->nlat, ws[k].lat, ws[k].nlat * sizeof *ws[k].lat);
        l->nlat += ws[k].nlat;
    }
    l->elapsed_s = bench_now_s() - t0;
    for (int k = 0; k < l->threads; k++)
        free(ws[k].lat);
    free(ws);
    qsort(l->lat_ms, l->nlat, sizeof *l->lat_ms, bench_cmp_double);
    return started == l->threads ? 0 : -1;
}

static inline void bench_load_report(const struct bench_load *l)
{
    double s = l->elapsed_s > 0 ? l->elapsed_s : 1e-9;
    printf("%llu items (%llu requests, %llu failed) in %.2f s: %.0f items/s, %.2f MB/s\n",
           (unsigned long long)l->items, (unsigned long long)l->acked,
           (unsigned long long)l->failed, s, (double)l->items / s, (double)l->bytes / s / 1e6);
    printf("RESULT items=%llu items_per_sec=%.1f bytes=%llu mb_per_sec=%.3f requests=%llu "
           "failed=%llu p50_ms=%.2f p99_ms=%.2f elapsed_s=%.3f\n",
           (unsigned long long)l->items, (double)l->items / s, (unsigned long long)l->bytes,
           (double)l->bytes / s / 1e6, (unsigned long long)l->acked,
           (unsigned long long)l->failed, bench_pct(l->lat_ms, l->nlat, 0.5),
           bench_pct(l->lat_ms, l->nlat, 0.99), s);
    (void)fflush(stdout);
}

/* ---- an HTTP POST transport for bench_load (open / send / close) ---- */

struct bench_http_tr {
    char url[512];           /* http://127.0.0.1:PORT/path */
    const char *headers;     /* extra header lines, each ending in CRLF */
    bool want_empty_body;    /* a 2xx with a body is a failure (OTLP partial success) */
};

struct bench_http_conn {
    struct bench_http c;
    char path[256];
    const struct bench_http_tr *tr;
};

static inline void *bench_http_open(void *tr, int k)
{
    (void)k;
    struct bench_http_conn *h = calloc(1, sizeof *h);
    if (h && bench_http_url(&h->c, ((struct bench_http_tr *)tr)->url, h->path, sizeof h->path) < 0) {
        free(h);
        return NULL;
    }
    if (h)
        h->tr = tr;
    return h;
}

static inline bool bench_http_send(void *conn, const struct bench_req *r, char *msg, size_t cap)
{
    struct bench_http_conn *h = conn;
    int st = bench_http_post(&h->c, h->path, h->tr->headers, r->body, r->len, msg, cap);
    if (st >= 200 && st < 300 && !(h->tr->want_empty_body && msg[0]))
        return true;
    char body[256];
    snprintf(body, sizeof body, "%s", msg);
    if (st < 0)
        snprintf(msg, cap, "transport error (%s)", strerror(errno));
    else
        snprintf(msg, cap, "HTTP %d%s: %s", st, st < 300 ? " with a partial success" : "", body);
    return false;
}

static inline void bench_http_free(void *conn)
{
    struct bench_http_conn *h = conn;
    bench_http_close(&h->c);
    free(h);
}

#endif
