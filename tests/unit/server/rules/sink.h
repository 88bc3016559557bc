/* sink: a loopback HTTP server for the notifier tests. It accepts connections one at a
 * time on 127.0.0.1 (an ephemeral port), reads one request (headers and a
 * Content-Length body), records path, body and Authorization header, and answers 200 —
 * or 500 to the first `fail_first` requests, or never (hang: the connection is held
 * until the sink stops).
 * Static inline so each test file takes what it uses. */
#ifndef TEST_RULES_SINK_H
#define TEST_RULES_SINK_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SINK_MAX 64

struct sink {
    int fd;
    unsigned port;
    pthread_t thread;
    atomic_bool stop;
    pthread_mutex_t mu;
    int fail_first;       /* answer 500 to this many requests first */
    bool hang;            /* never answer */
    int requests;         /* all requests seen */
    int n;                /* bodies recorded (answered 200) */
    char *bodies[SINK_MAX];
    char *paths[SINK_MAX];
    char *auths[SINK_MAX];  /* the Authorization header's value ("" when none) */
};

static inline void sink_answer(int c, int status)
{
    char resp[128];
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 %d %s\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                     status, status == 200 ? "OK" : "Internal Server Error");
    ssize_t w = write(c, resp, (size_t)n);
    (void)w;
}

static inline void sink_serve(struct sink *s, int c)
{
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    long want = -1;
    char *body = NULL;
    while (len < cap) {
        struct pollfd p = { c, POLLIN, 0 };
        if (poll(&p, 1, 200) <= 0) {
            if (atomic_load(&s->stop))
                break;
            continue;
        }
        ssize_t r = read(c, buf + len, cap - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        buf[len] = '\0';
        char *hend = strstr(buf, "\r\n\r\n");
        if (hend && want < 0) {
            char *cl = strcasestr(buf, "Content-Length:");
            want = cl ? strtol(cl + 15, NULL, 10) : 0;
            body = hend + 4;
        }
        if (body && (long)(len - (size_t)(body - buf)) >= want)
            break;
    }
    pthread_mutex_lock(&s->mu);
    int seen = s->requests++;
    bool hang = s->hang, fail = seen < s->fail_first;
    if (!hang && !fail && body && s->n < SINK_MAX) {
        char *sp = strchr(buf, ' ');
        char *sp2 = sp ? strchr(sp + 1, ' ') : NULL;
        s->paths[s->n] = sp && sp2 ? strndup(sp + 1, (size_t)(sp2 - sp - 1)) : strdup("");
        char *az = strcasestr(buf, "\r\nAuthorization: ");
        s->auths[s->n] = az && az < body ? strndup(az + 17, strcspn(az + 17, "\r\n"))
                                         : strdup("");
        s->bodies[s->n++] = strndup(body, (size_t)want);
    }
    pthread_mutex_unlock(&s->mu);
    if (hang) { /* held until the sink stops or is told to stop hanging */
        bool h = true;
        while (!atomic_load(&s->stop) && h) {
            usleep(20000);
            pthread_mutex_lock(&s->mu);
            h = s->hang;
            pthread_mutex_unlock(&s->mu);
        }
    } else {
        sink_answer(c, fail ? 500 : 200);
    }
    free(buf);
}

static inline void *sink_main(void *arg)
{
    struct sink *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd p = { s->fd, POLLIN, 0 };
        if (poll(&p, 1, 100) <= 0)
            continue;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            continue;
        sink_serve(s, c);
        close(c);
    }
    return NULL;
}

static inline void sink_start(struct sink *s)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof a;
    int one = 1;
    setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(s->fd, (struct sockaddr *)&a, sizeof a) || listen(s->fd, 16) ||
        getsockname(s->fd, (struct sockaddr *)&a, &al))
        abort();
    s->port = ntohs(a.sin_port);
    pthread_create(&s->thread, NULL, sink_main, s);
}

static inline void sink_stop(struct sink *s)
{
    atomic_store(&s->stop, true);
    pthread_join(s->thread, NULL);
    close(s->fd);
    for (int i = 0; i < s->n; i++) {
        free(s->bodies[i]);
        free(s->paths[i]);
        free(s->auths[i]);
    }
    pthread_mutex_destroy(&s->mu);
}

static inline int sink_count(struct sink *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->n;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* Waits up to ms for at least n recorded bodies; returns the count. */
static inline int sink_wait(struct sink *s, int n, int ms)
{
    for (int waited = 0; sink_count(s) < n && waited < ms; waited += 10)
        usleep(10000);
    return sink_count(s);
}

#endif
