/* scrapetarget: many scrape targets behind one loopback port, for bench/scrape_bench.sh.
 *
 *   scrapetarget --port P --targets N --series M [--threads T]
 *
 * GET /metrics?id=K (0 <= K < N) answers with M series in the text format 0.0.4,
 * generated per request: M/10 families of 10 series each
 *   # HELP bench_metric_F_total Generated counter F.
 *   # TYPE bench_metric_F_total counter
 *   bench_metric_F_total{target="K",series="S",path="/api/v1/p<S%7>",code="200"} <value>
 * where value grows with time (a counter advancing once a second), so every scrape
 * stores new samples. Keep-alive HTTP/1.1 with Content-Length: idle connections wait in
 * epoll, T threads (default 4) answer the ready ones. Any other path is 404. Runs until
 * killed. */
#include "bench_util.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

static int listen_fd;
static long ntargets = 1000, nseries = 1000;

struct out {
    char *p;
    size_t len, cap;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (n == 0)
        return; /* o->p may still be NULL; memcpy must not see it even for 0 bytes */
    if (!o->p || n > o->cap - o->len) {
        o->cap = (o->len + n) * 2;
        o->p = realloc(o->p, o->cap);
        if (!o->p)
            abort();
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void body(struct out *o, long id)
{
    char line[256];
    long now = (long)time(NULL);
    for (long s = 0; s < nseries; s++) {
        long fam = s / 10;
        int n;
        if (s % 10 == 0) {
            n = snprintf(line, sizeof line, "# HELP bench_metric_%ld_total Generated counter "
                         "%ld.\n# TYPE bench_metric_%ld_total counter\n", fam, fam, fam);
            put(o, line, (size_t)n);
        }
        n = snprintf(line, sizeof line, "bench_metric_%ld_total{target=\"%ld\",series=\"%ld\","
                     "path=\"/api/v1/p%ld\",code=\"200\"} %ld\n", fam, id, s, s % 7,
                     now * (s % 5 + 1) + id);
        put(o, line, (size_t)n);
    }
}

/* Serves one request on c (blocking). 0 to keep the connection, -1 to close it. */
static int serve_one(int c)
{
    char req[4096];
    size_t len = 0;
    while (!memmem(req, len, "\r\n\r\n", 4)) {
        if (len == sizeof req)
            return -1;
        ssize_t r = read(c, req + len, sizeof req - len);
        if (r <= 0)
            return -1;
        len += (size_t)r;
    }
    long id = -1;
    if (!strncmp(req, "GET /metrics?id=", 16))
        id = strtol(req + 16, NULL, 10);
    struct out o = { 0 };
    char head[256];
    int hn;
    if (id >= 0 && id < ntargets) {
        body(&o, id);
        hn = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; "
                      "version=0.0.4\r\nContent-Length: %zu\r\n\r\n", o.len);
    } else {
        hn = snprintf(head, sizeof head, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    }
    int rc = 0;
    if (write(c, head, (size_t)hn) != hn)
        rc = -1;
    for (size_t off = 0; rc == 0 && off < o.len;) {
        ssize_t w = write(c, o.p + off, o.len - off);
        if (w <= 0)
            rc = -1;
        else
            off += (size_t)w;
    }
    free(o.p);
    return rc;
}

/* Connections wait in epoll (one-shot); a ready one goes to a worker for one request. */
static int ep;
static int queue[65536];
static size_t qh, qt;
static pthread_mutex_t qmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t qcv = PTHREAD_COND_INITIALIZER;

static void *worker(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&qmu);
        while (qh == qt)
            pthread_cond_wait(&qcv, &qmu);
        int c = queue[qh++ % 65536];
        pthread_mutex_unlock(&qmu);
        if (serve_one(c) < 0) {
            close(c);
            continue;
        }
        struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.fd = c };
        epoll_ctl(ep, EPOLL_CTL_MOD, c, &ev);
    }
    return NULL;
}

/* A number argument in [min, max]; junk or a value out of range exits with a message. */
static long arg_in(const char *flag, const char *s, long min, long max)
{
    long long v = bench_arg_int(flag, s);
    if (v < min || v > max) {
        fprintf(stderr, "%s: %lld is out of range [%ld, %ld]\n", flag, v, min, max);
        exit(2);
    }
    return (long)v;
}

int main(int argc, char **argv)
{
    long port = 0, threads = 4;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port"))
            port = arg_in(argv[i], argv[i + 1], 0, 65535);
        else if (!strcmp(argv[i], "--targets"))
            ntargets = arg_in(argv[i], argv[i + 1], 1, LONG_MAX);
        else if (!strcmp(argv[i], "--series"))
            nseries = arg_in(argv[i], argv[i + 1], 0, LONG_MAX / 16);
        else if (!strcmp(argv[i], "--threads"))
            threads = arg_in(argv[i], argv[i + 1], 1, 1024);
        else {
            fprintf(stderr, "usage: scrapetarget --port P --targets N --series M [--threads T]\n");
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (bind(listen_fd, (struct sockaddr *)&a, sizeof a) || listen(listen_fd, 1024)) {
        perror("scrapetarget: bind/listen");
        return 1;
    }
    /* scrapers keep a connection per target open: a thread per connection would be
     * thousands, so idle connections wait in epoll and ready ones go to a small pool */
    ep = epoll_create1(0);
    struct epoll_event lev = { .events = EPOLLIN, .data.fd = listen_fd };
    epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &lev);
    pthread_t th;
    for (long i = 0; i < threads; i++)
        pthread_create(&th, NULL, worker, NULL);
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.fd == listen_fd) {
                int c = accept(listen_fd, NULL, NULL);
                if (c < 0)
                    continue;
                struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.fd = c };
                epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
                continue;
            }
            pthread_mutex_lock(&qmu);
            queue[qt++ % 65536] = evs[i].data.fd;
            pthread_cond_signal(&qcv);
            pthread_mutex_unlock(&qmu);
        }
    }
    return 0;
}
