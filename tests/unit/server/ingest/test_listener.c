/* Tests server/ingest/listener.c with loopback sockets and recording callbacks:
 * datagrams (and the truncated flag for one over max_datagram), TCP bytes per
 * connection with per-thread and per-connection state, every way a connection ends
 * (peer close, refusal over max_conns, on_data refusing bytes, idle timeout, shutdown)
 * with the events and open counts reported, bad addresses and a port in use naming the
 * config key, missing callbacks, a thread whose init fails, and allocation failure. */
#include "../../../../server/ingest/listener.h"
#include "../../../../storage/base/vg_alloc.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* What the callbacks saw; guarded by mu (the two threads call at once). */
struct seen {
    pthread_mutex_t mu;
    char udp[8][64];
    bool cut[8];
    int nudp;
    char tcp[256]; /* bytes of every connection, in order, "|" after each close */
    int events[LISTENER_SHUTDOWN + 1];
    size_t last_open;
    int closes[LISTENER_SHUTDOWN + 1];
    int threads_up, threads_down;
    int conns_live;
    bool fail_init_udp;
    const char *reject_on; /* on_data refuses bytes holding this */
};

static struct seen sn;
static struct listener *l;
static struct vg_err err;

static void setup(void)
{
    memset(&sn, 0, sizeof sn);
    pthread_mutex_init(&sn.mu, NULL);
    vg_err_clear(&err);
    l = NULL;
}

static void teardown(void)
{
    vg_alloc_fail_after(0);
    listener_free(l);
    pthread_mutex_destroy(&sn.mu);
}

TestSuite(listener, .init = setup, .fini = teardown, .timeout = 30);

struct local {
    const char *transport;
};

static int t_init(void *ctx, const char *transport, void **local)
{
    struct seen *s = ctx;
    if (s->fail_init_udp && !strcmp(transport, "udp"))
        return VG_ENOMEM;
    struct local *lo = vg_malloc(sizeof *lo);
    if (!lo)
        return VG_ENOMEM;
    lo->transport = transport;
    *local = lo;
    pthread_mutex_lock(&s->mu);
    s->threads_up++;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

static void t_fini(void *local)
{
    vg_free(local);
    pthread_mutex_lock(&sn.mu);
    sn.threads_down++;
    pthread_mutex_unlock(&sn.mu);
}

static void t_datagram(void *local, const char *p, size_t n, bool truncated)
{
    cr_assert_str_eq(((struct local *)local)->transport, "udp");
    pthread_mutex_lock(&sn.mu);
    if (sn.nudp < 8) {
        snprintf(sn.udp[sn.nudp], sizeof sn.udp[0], "%.*s", (int)n, p);
        sn.cut[sn.nudp++] = truncated;
    }
    pthread_mutex_unlock(&sn.mu);
}

static void *t_open(void *local)
{
    cr_assert_str_eq(((struct local *)local)->transport, "tcp");
    int *c = vg_malloc(sizeof *c);
    if (c) {
        pthread_mutex_lock(&sn.mu);
        *c = ++sn.conns_live;
        pthread_mutex_unlock(&sn.mu);
    }
    return c;
}

static int t_data(void *local, void *conn, const char *p, size_t n)
{
    (void)local, (void)conn;
    pthread_mutex_lock(&sn.mu);
    size_t used = strlen(sn.tcp);
    snprintf(sn.tcp + used, sizeof sn.tcp - used, "%.*s", (int)n, p);
    bool reject = sn.reject_on && memmem(p, n, sn.reject_on, strlen(sn.reject_on));
    pthread_mutex_unlock(&sn.mu);
    return reject ? VG_EINVAL : 0;
}

static void t_close(void *local, void *conn, enum listener_event why)
{
    (void)local;
    pthread_mutex_lock(&sn.mu);
    sn.closes[why]++;
    sn.conns_live--;
    size_t used = strlen(sn.tcp);
    snprintf(sn.tcp + used, sizeof sn.tcp - used, "|");
    pthread_mutex_unlock(&sn.mu);
    vg_free(conn);
}

static void t_event(void *ctx, enum listener_event e, size_t open)
{
    struct seen *s = ctx;
    pthread_mutex_lock(&s->mu);
    s->events[e]++;
    s->last_open = open;
    pthread_mutex_unlock(&s->mu);
}

static struct listener_opts opts(void)
{
    return (struct listener_opts){
        .name = "test", .udp_key = "t.udp_addr", .udp_addr = "127.0.0.1:0",
        .tcp_key = "t.tcp_addr", .tcp_addr = "127.0.0.1:0", .max_datagram = 16,
        .max_conns = 4, .ctx = &sn, .thread_init = t_init, .thread_fini = t_fini,
        .on_datagram = t_datagram, .conn_open = t_open, .on_data = t_data,
        .conn_close = t_close, .on_event = t_event,
    };
}

static void start(const struct listener_opts *o)
{
    l = listener_new(o, &err);
    cr_assert_not_null(l, "%s", err.msg);
    cr_assert_eq(listener_start(l, &err), 0, "%s", err.msg);
}

static struct sockaddr_in addr_of(uint16_t port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static int tcp_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = addr_of(listener_tcp_port(l));
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static void send_str(int fd, const char *s)
{
    cr_assert_eq(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

static bool closed_by_peer(int fd, int ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    char c;
    return poll(&p, 1, ms) == 1 && recv(fd, &c, 1, 0) == 0;
}

/* Waits (5 s at most) until cond holds, checked under the lock. */
#define WAIT_FOR(cond)                                                                      \
    do {                                                                                    \
        bool ok_ = false;                                                                   \
        for (int i_ = 0; i_ < 500 && !ok_; i_++) {                                          \
            pthread_mutex_lock(&sn.mu);                                                     \
            ok_ = (cond);                                                                   \
            pthread_mutex_unlock(&sn.mu);                                                   \
            if (!ok_)                                                                       \
                usleep(10000);                                                              \
        }                                                                                   \
        cr_assert(ok_, "timed out waiting for " #cond);                                     \
    } while (0)

Test(listener, datagrams_and_truncation)
{
    struct listener_opts o = opts();
    o.tcp_addr = "";
    start(&o);
    cr_assert_neq(listener_udp_port(l), 0);
    cr_assert_eq(listener_tcp_port(l), 0, "no TCP socket asked for");
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = addr_of(listener_udp_port(l));
    const char *m[3] = { "hello", "exactly16bytes!!", "seventeen bytes!!" };
    for (int i = 0; i < 3; i++)
        cr_assert_eq(sendto(fd, m[i], strlen(m[i]), 0, (struct sockaddr *)&a, sizeof a),
                     (ssize_t)strlen(m[i]));
    close(fd);
    WAIT_FOR(sn.nudp == 3);
    cr_assert_str_eq(sn.udp[0], "hello");
    cr_assert_not(sn.cut[0]);
    cr_assert_str_eq(sn.udp[1], "exactly16bytes!!");
    cr_assert_not(sn.cut[1]);
    cr_assert_str_eq(sn.udp[2], "seventeen bytes!", "cut to max_datagram");
    cr_assert(sn.cut[2]);
    listener_free(l);
    l = NULL;
    cr_assert_eq(sn.threads_up, 1);
    cr_assert_eq(sn.threads_down, 1, "thread_fini ran at stop");
}

Test(listener, tcp_bytes_close_and_shutdown)
{
    struct listener_opts o = opts();
    start(&o);
    cr_assert_neq(listener_tcp_port(l), 0);
    int a = tcp_connect();
    send_str(a, "one ");
    WAIT_FOR(strcmp(sn.tcp, "one ") == 0);
    send_str(a, "two");
    WAIT_FOR(strcmp(sn.tcp, "one two") == 0);
    close(a);
    WAIT_FOR(sn.closes[LISTENER_CLOSED] == 1 && sn.events[LISTENER_CLOSED] == 1);
    cr_assert_str_eq(sn.tcp, "one two|");
    cr_assert_eq(sn.events[LISTENER_ACCEPTED], 1);
    cr_assert_eq(sn.events[LISTENER_CLOSED], 1);
    cr_assert_eq(sn.last_open, 0);

    int b = tcp_connect();
    WAIT_FOR(sn.events[LISTENER_ACCEPTED] == 2 && sn.last_open == 1);
    listener_free(l); /* an open connection is closed with SHUTDOWN */
    l = NULL;
    cr_assert_eq(sn.closes[LISTENER_SHUTDOWN], 1);
    cr_assert_eq(sn.events[LISTENER_SHUTDOWN], 1);
    cr_assert_eq(sn.conns_live, 0, "every connection's state freed");
    cr_assert_eq(sn.threads_down, 2);
    cr_assert(closed_by_peer(b, 1000));
    close(b);
}

Test(listener, connection_limit_and_rejected_bytes)
{
    struct listener_opts o = opts();
    o.max_conns = 1;
    sn.reject_on = "BAD";
    start(&o);
    int a = tcp_connect();
    WAIT_FOR(sn.events[LISTENER_ACCEPTED] == 1);
    int b = tcp_connect();
    cr_assert(closed_by_peer(b, 3000), "over max_conns: closed at once");
    WAIT_FOR(sn.events[LISTENER_REFUSED] == 1);
    cr_assert_eq(sn.last_open, 1);
    close(b);
    send_str(a, "fine BAD");
    cr_assert(closed_by_peer(a, 3000), "refused bytes close the connection");
    WAIT_FOR(sn.closes[LISTENER_REJECTED] == 1 && sn.events[LISTENER_REJECTED] == 1);
    close(a);
    int c = tcp_connect(); /* its slot is free again */
    WAIT_FOR(sn.events[LISTENER_ACCEPTED] == 2);
    close(c);
}

Test(listener, idle_timeout)
{
    struct listener_opts o = opts();
    o.idle_ms = 300;
    start(&o);
    int a = tcp_connect();
    send_str(a, "x");
    cr_assert(closed_by_peer(a, 5000));
    close(a);
    WAIT_FOR(sn.closes[LISTENER_IDLE_TIMEOUT] == 1 && sn.events[LISTENER_IDLE_TIMEOUT] == 1);
    cr_assert_str_eq(sn.tcp, "x|");
}

Test(listener, event_names)
{
    cr_assert_str_eq(listener_event_name(LISTENER_ACCEPTED), "accepted");
    cr_assert_str_eq(listener_event_name(LISTENER_REFUSED), "refused");
    cr_assert_str_eq(listener_event_name(LISTENER_CLOSED), "closed");
    cr_assert_str_eq(listener_event_name(LISTENER_ERROR), "error");
    cr_assert_str_eq(listener_event_name(LISTENER_REJECTED), "rejected");
    cr_assert_str_eq(listener_event_name(LISTENER_IDLE_TIMEOUT), "idle_timeout");
    cr_assert_str_eq(listener_event_name(LISTENER_SHUTDOWN), "shutdown");
    cr_assert_str_eq(listener_event_name((enum listener_event)99), "unknown");
}

Test(listener, bad_addresses_and_options)
{
    struct listener_opts o = opts();
    o.tcp_addr = "127.0.0.1:notaport";
    size_t live = vg_alloc_live_bytes();
    cr_assert_null(listener_new(&o, &err));
    cr_assert(strstr(err.msg, "t.tcp_addr"), "%s", err.msg);
    cr_assert_eq(vg_alloc_live_bytes(), live, "nothing left behind");

    /* a port in use: the error names the key and the address */
    o = opts();
    o.udp_addr = "";
    start(&o);
    char busy[32];
    snprintf(busy, sizeof busy, "127.0.0.1:%u", listener_tcp_port(l));
    struct listener_opts o2 = opts();
    o2.udp_addr = NULL;
    o2.tcp_addr = busy;
    cr_assert_null(listener_new(&o2, &err));
    cr_assert_eq(err.code, VG_EIO);
    cr_assert(strstr(err.msg, "t.tcp_addr") && strstr(err.msg, busy), "%s", err.msg);

    o2 = opts();
    o2.on_data = NULL;
    cr_assert_null(listener_new(&o2, &err));
    cr_assert_eq(err.code, VG_EINVAL);
    o2 = opts();
    o2.tcp_addr = "";
    o2.max_datagram = 0;
    cr_assert_null(listener_new(&o2, &err));
    cr_assert_eq(err.code, VG_EINVAL);
    listener_free(NULL);
    cr_assert_eq(listener_udp_port(NULL), 0);
}

Test(listener, thread_init_failure_stops_only_that_thread)
{
    sn.fail_init_udp = true;
    struct listener_opts o = opts();
    start(&o);
    int a = tcp_connect();
    send_str(a, "still served");
    WAIT_FOR(strcmp(sn.tcp, "still served") == 0);
    close(a);
    listener_free(l);
    l = NULL;
    cr_assert_eq(sn.threads_up, 1);
    cr_assert_eq(sn.threads_down, 1);
}

Test(listener, allocation_failure)
{
    struct listener_opts o = opts();
    vg_alloc_fail_after(1);
    cr_assert_null(listener_new(&o, &err));
    vg_alloc_fail_after(0);
    cr_assert_eq(err.code, VG_ENOMEM);
    /* a connection whose state cannot be made is refused; the listener goes on */
    start(&o);
    WAIT_FOR(sn.threads_up == 2); /* both threads hold their buffers */
    vg_alloc_fail_after(1);
    int a = tcp_connect();
    cr_assert(closed_by_peer(a, 3000));
    vg_alloc_fail_after(0);
    close(a);
    WAIT_FOR(sn.events[LISTENER_REFUSED] == 1);
    int b = tcp_connect();
    send_str(b, "ok");
    WAIT_FOR(strcmp(sn.tcp, "ok") == 0);
    close(b);
}
