/* listener: see listener.h.
 *
 * The stop pipe's write end is closed by listener_free: its read end then reads as EOF,
 * readable for every poll and epoll watching it, so one close wakes both threads. The
 * TCP thread owns the connection table (slots 0..nconns-1, a closed connection's slot
 * taken by the last one) and the epoll set; in epoll the listening socket and the stop
 * pipe are told from connections by the addresses of two static tags. */
#include "listener.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_log.h"
#include "../netaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define UDP_DRAIN 64        /* datagrams read per wake before polling again */
#define TCP_READ_BYTES 65536
#define TCP_READS 16        /* reads per connection per wake, for fairness */
#define IDLE_CHECK_MS 1000
#define UDP_RCVBUF (4 << 20)
#define COMPLAIN_MS 60000

struct listener {
    struct listener_opts o;
    char name[16];
    char *udp_addr, *tcp_addr; /* as configured, for the "listening" log line */
    int udp_fd, tcp_fd;
    uint16_t udp_port, tcp_port;
    int stop_pipe[2];
    pthread_t udp_thr, tcp_thr;
    bool udp_started, tcp_started;
    struct vg_complaint complaint; /* socket errors, logged with back-off */
};

const char *listener_event_name(enum listener_event e)
{
    static const char *const names[] = { "accepted", "refused", "closed", "error",
                                         "rejected", "idle_timeout", "shutdown" };
    return (unsigned)e < sizeof names / sizeof names[0] ? names[e] : "unknown";
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void name_thread(const struct listener *l, const char *transport)
{
    char n[16];
    snprintf(n, sizeof n, "%.10s-%.3s", l->name, transport); /* 15 bytes at most */
    pthread_setname_np(pthread_self(), n);
}

/* The thread's local state: thread_init's, or ctx. false (logged) when init failed. */
static bool thread_begin(struct listener *l, const char *transport, void **local)
{
    *local = l->o.ctx;
    if (l->o.thread_init && l->o.thread_init(l->o.ctx, transport, local) < 0) {
        vg_log(VG_LOG_ERROR, l->name, "out of memory: listener stopped", "transport",
               transport, NULL);
        return false;
    }
    return true;
}

static void thread_end(struct listener *l, void *local)
{
    if (l->o.thread_fini)
        l->o.thread_fini(local);
}

/* ---- UDP ---- */

static void *udp_main(void *arg)
{
    struct listener *l = arg;
    name_thread(l, "udp");
    void *local;
    char *buf = vg_malloc(l->o.max_datagram + 1);
    if (!buf) {
        vg_log(VG_LOG_ERROR, l->name, "out of memory: listener stopped", "transport", "udp",
               NULL);
        return NULL;
    }
    if (!thread_begin(l, "udp", &local)) {
        vg_free(buf);
        return NULL;
    }
    struct pollfd pf[2] = { { .fd = l->udp_fd, .events = POLLIN },
                            { .fd = l->stop_pipe[0], .events = POLLIN } };
    for (;;) {
        if (poll(pf, 2, -1) < 0 && errno != EINTR)
            break;
        if (pf[1].revents)
            break;
        for (int k = 0; k < UDP_DRAIN; k++) {
            /* MSG_TRUNC: the datagram's real length, so an oversized one is known */
            ssize_t n = recv(l->udp_fd, buf, l->o.max_datagram + 1, MSG_DONTWAIT | MSG_TRUNC);
            if (n < 0) {
                if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                    vg_complain(&l->complaint, COMPLAIN_MS, VG_LOG_WARN, l->name,
                                "UDP receive failed", strerror(errno));
                break;
            }
            bool cut = (size_t)n > l->o.max_datagram;
            l->o.on_datagram(local, buf, cut ? l->o.max_datagram : (size_t)n, cut);
        }
    }
    thread_end(l, local);
    vg_free(buf);
    return NULL;
}

/* ---- TCP ---- */

struct conn {
    int fd;
    int64_t last_ms;
    size_t slot;
    void *state;
};

struct tcp {
    struct listener *l;
    void *local;
    int ep;
    struct conn **conns; /* max_conns slots */
    size_t nconns;
    char *rbuf;
};

static void event(struct tcp *t, enum listener_event e)
{
    if (t->l->o.on_event)
        t->l->o.on_event(t->l->o.ctx, e, t->nconns);
}

static void conn_end(struct tcp *t, struct conn *c, enum listener_event why)
{
    t->l->o.conn_close(t->local, c->state, why);
    epoll_ctl(t->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    t->conns[c->slot] = t->conns[--t->nconns];
    t->conns[c->slot]->slot = c->slot;
    vg_free(c);
    event(t, why);
}

static void tcp_accept(struct tcp *t)
{
    struct listener *l = t->l;
    for (;;) {
        int fd = accept4(l->tcp_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                vg_complain(&l->complaint, COMPLAIN_MS, VG_LOG_WARN, l->name,
                            "TCP accept failed", strerror(errno));
            return;
        }
        struct conn *c = t->nconns < l->o.max_conns ? vg_calloc(1, sizeof *c) : NULL;
        if (c && !(c->state = l->o.conn_open(t->local))) {
            vg_free(c);
            c = NULL;
        }
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        if (c && epoll_ctl(t->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            l->o.conn_close(t->local, c->state, LISTENER_REFUSED);
            vg_free(c);
            c = NULL;
        }
        if (!c) {
            close(fd);
            event(t, LISTENER_REFUSED);
            continue;
        }
        c->fd = fd;
        c->last_ms = mono_ms();
        c->slot = t->nconns;
        t->conns[t->nconns++] = c;
        event(t, LISTENER_ACCEPTED);
    }
}

static void tcp_read(struct tcp *t, struct conn *c)
{
    for (int k = 0; k < TCP_READS; k++) {
        ssize_t n = read(c->fd, t->rbuf, TCP_READ_BYTES);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            conn_end(t, c, n == 0 ? LISTENER_CLOSED : LISTENER_ERROR);
            return;
        }
        c->last_ms = mono_ms();
        if (t->l->o.on_data(t->local, c->state, t->rbuf, (size_t)n) < 0) {
            conn_end(t, c, LISTENER_REJECTED);
            return;
        }
    }
}

static void close_idle(struct tcp *t, int64_t now)
{
    for (size_t i = t->nconns; i > 0; i--)
        if (now - t->conns[i - 1]->last_ms >= t->l->o.idle_ms)
            conn_end(t, t->conns[i - 1], LISTENER_IDLE_TIMEOUT);
}

static void tcp_loop(struct tcp *t)
{
    struct listener *l = t->l;
    int64_t next_idle_check = mono_ms() + IDLE_CHECK_MS;
    bool stop = false;
    while (!stop) {
        struct epoll_event evs[64];
        int n = epoll_wait(t->ep, evs, 64, l->o.idle_ms > 0 ? IDLE_CHECK_MS : -1);
        if (n < 0 && errno != EINTR)
            break;
        for (int i = 0; i < n && !stop; i++) {
            if (evs[i].data.ptr == &l->stop_pipe)
                stop = true;
            else if (evs[i].data.ptr == &l->tcp_fd)
                tcp_accept(t);
            else /* only this event's own connection can be closed here */
                tcp_read(t, evs[i].data.ptr);
        }
        int64_t now = mono_ms();
        if (l->o.idle_ms > 0 && now >= next_idle_check) {
            next_idle_check = now + IDLE_CHECK_MS;
            close_idle(t, now);
        }
    }
    while (t->nconns)
        conn_end(t, t->conns[t->nconns - 1], LISTENER_SHUTDOWN);
}

static void *tcp_main(void *arg)
{
    struct listener *l = arg;
    name_thread(l, "tcp");
    struct tcp t = { .l = l, .ep = epoll_create1(EPOLL_CLOEXEC) };
    t.conns = vg_calloc(l->o.max_conns, sizeof *t.conns);
    t.rbuf = vg_malloc(TCP_READ_BYTES);
    /* the listening socket and the stop pipe are tagged with their fields' addresses */
    struct epoll_event le = { .events = EPOLLIN, .data.ptr = &l->tcp_fd };
    struct epoll_event se = { .events = EPOLLIN, .data.ptr = &l->stop_pipe };
    if (t.ep < 0 || !t.conns || !t.rbuf || epoll_ctl(t.ep, EPOLL_CTL_ADD, l->tcp_fd, &le) < 0 ||
        epoll_ctl(t.ep, EPOLL_CTL_ADD, l->stop_pipe[0], &se) < 0) {
        vg_log(VG_LOG_ERROR, l->name, "cannot run the TCP listener", "error", strerror(errno),
               NULL);
    } else if (thread_begin(l, "tcp", &t.local)) {
        tcp_loop(&t);
        thread_end(l, t.local);
    }
    if (t.ep >= 0)
        close(t.ep);
    vg_free(t.conns);
    vg_free(t.rbuf);
    return NULL;
}

/* ---- life cycle ---- */

/* addr bound to a new socket of the given type; errors name key. */
static int bind_addr(const char *key, const char *addr, int type, uint16_t *port,
                     struct vg_err *err)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    if (netaddr_parse(addr, type, &ss, &sl, err) < 0)
        return vg_err_prefix(err, "%s", key);
    int fd = socket(ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1, rcvbuf = UDP_RCVBUF;
    if (fd >= 0 && type == SOCK_STREAM)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd >= 0 && type == SOCK_DGRAM)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (fd < 0 || bind(fd, (struct sockaddr *)&ss, sl) < 0 ||
        (type == SOCK_STREAM && listen(fd, 128) < 0)) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return vg_err_set(err, VG_EIO, "%s: cannot listen on \"%s\": %s", key, addr,
                          strerror(e));
    }
    struct sockaddr_storage got = { 0 };
    socklen_t gl = sizeof got;
    *port = 0;
    if (getsockname(fd, (struct sockaddr *)&got, &gl) == 0) {
        if (got.ss_family == AF_INET6) {
            struct sockaddr_in6 a6;
            memcpy(&a6, &got, sizeof a6);
            *port = ntohs(a6.sin6_port);
        } else {
            struct sockaddr_in a4;
            memcpy(&a4, &got, sizeof a4);
            *port = ntohs(a4.sin_port);
        }
    }
    return fd;
}

struct listener *listener_new(const struct listener_opts *o, struct vg_err *err)
{
    bool udp = o->udp_addr && o->udp_addr[0], tcp = o->tcp_addr && o->tcp_addr[0];
    if ((udp && (!o->on_datagram || o->max_datagram < 1)) ||
        (tcp && (!o->conn_open || !o->on_data || !o->conn_close || o->max_conns < 1))) {
        vg_err_set(err, VG_EINVAL, "%s: listener callbacks or limits missing", o->name);
        return NULL;
    }
    struct listener *l = vg_calloc(1, sizeof *l);
    if (!l) {
        vg_err_set(err, VG_ENOMEM, "out of memory");
        return NULL;
    }
    l->o = *o;
    l->o.udp_key = l->o.udp_addr = l->o.tcp_key = l->o.tcp_addr = NULL; /* not kept */
    snprintf(l->name, sizeof l->name, "%s", o->name);
    l->o.name = l->name;
    l->udp_fd = l->tcp_fd = -1;
    l->stop_pipe[0] = l->stop_pipe[1] = -1;
    l->udp_addr = vg_strdup(udp ? o->udp_addr : "");
    l->tcp_addr = vg_strdup(tcp ? o->tcp_addr : "");
    if (!l->udp_addr || !l->tcp_addr) {
        vg_err_set(err, VG_ENOMEM, "out of memory");
        goto fail;
    }
    if (pipe2(l->stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        vg_err_set(err, VG_EIO, "%s: pipe: %s", o->name, strerror(errno));
        goto fail;
    }
    if (udp && (l->udp_fd = bind_addr(o->udp_key, o->udp_addr, SOCK_DGRAM, &l->udp_port,
                                      err)) < 0)
        goto fail;
    if (tcp && (l->tcp_fd = bind_addr(o->tcp_key, o->tcp_addr, SOCK_STREAM, &l->tcp_port,
                                      err)) < 0)
        goto fail;
    return l;
fail:
    listener_free(l);
    return NULL;
}

int listener_start(struct listener *l, struct vg_err *err)
{
    if (l->udp_fd >= 0 && !l->udp_started) {
        if (pthread_create(&l->udp_thr, NULL, udp_main, l) != 0)
            return vg_err_set(err, VG_ENOMEM, "cannot start the %s UDP thread", l->name);
        l->udp_started = true;
    }
    if (l->tcp_fd >= 0 && !l->tcp_started) {
        if (pthread_create(&l->tcp_thr, NULL, tcp_main, l) != 0)
            return vg_err_set(err, VG_ENOMEM, "cannot start the %s TCP thread", l->name);
        l->tcp_started = true;
    }
    char up[8], tp[8];
    snprintf(up, sizeof up, "%u", l->udp_port);
    snprintf(tp, sizeof tp, "%u", l->tcp_port);
    vg_log(VG_LOG_INFO, l->name, "listening", "udp_addr", l->udp_addr, "udp_port", up,
           "tcp_addr", l->tcp_addr, "tcp_port", tp, NULL);
    return 0;
}

void listener_free(struct listener *l)
{
    if (!l)
        return;
    if (l->stop_pipe[1] >= 0)
        close(l->stop_pipe[1]); /* the read end turns readable (EOF) for every poller */
    if (l->udp_started)
        pthread_join(l->udp_thr, NULL);
    if (l->tcp_started)
        pthread_join(l->tcp_thr, NULL);
    if (l->stop_pipe[0] >= 0)
        close(l->stop_pipe[0]);
    if (l->udp_fd >= 0)
        close(l->udp_fd);
    if (l->tcp_fd >= 0)
        close(l->tcp_fd);
    vg_free(l->udp_addr);
    vg_free(l->tcp_addr);
    vg_free(l);
}

uint16_t listener_udp_port(const struct listener *l)
{
    return l ? l->udp_port : 0;
}

uint16_t listener_tcp_port(const struct listener *l)
{
    return l ? l->tcp_port : 0;
}
