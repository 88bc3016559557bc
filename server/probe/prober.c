/* prober: the prober table and the helpers every prober uses (results, resolving with
 * the blackbox exporter's preferred_ip_protocol rule, bounded connects and waits). */
#include "prober.h"

/* prober.h gives the analyser a macro for this; here is the real function. */
#undef probe_fail

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const struct prober *const table[] = { &prober_http, &prober_tcp, &prober_dns,
                                              &prober_icmp };

const struct prober *prober_find(const char *name)
{
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (!strcmp(table[i]->name, name))
            return table[i];
    return NULL;
}

void probe_add(struct probe_result *r, const char *name, const char *help, const char *lname,
               const char *lvalue, double value)
{
    if (r->n < PROBE_MAX_SAMPLES)
        r->s[r->n++] = (struct probe_sample){ name, help, lname, lvalue, value };
}

bool probe_fail(struct probe_result *r, const char *fmt, ...)
{
    if (r->error[0])
        return false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof r->error, fmt, ap);
    va_end(ap);
    return false;
}

int64_t probe_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double probe_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

bool probe_split_hostport(const char *target, const char *default_port, char *host,
                          size_t hcap, char *port, size_t pcap)
{
    const char *hs = target, *he, *ps = NULL;
    if (target[0] == '[') {
        hs = target + 1;
        he = strchr(hs, ']');
        if (!he)
            return false;
        if (he[1] == ':')
            ps = he + 2;
        else if (he[1])
            return false;
    } else {
        const char *c = strrchr(target, ':');
        if (c && strchr(target, ':') != c)
            return false; /* an IPv6 address without brackets: ambiguous */
        he = c ? c : target + strlen(target);
        if (c)
            ps = c + 1;
    }
    if (!ps && !default_port)
        return false;
    const char *p = ps ? ps : default_port;
    size_t hl = (size_t)(he - hs), pl = strlen(p);
    if (!hl || hl >= hcap || !pl || pl >= pcap || strspn(p, "0123456789") != pl)
        return false;
    memcpy(host, hs, hl);
    host[hl] = '\0';
    memcpy(port, p, pl + 1);
    return true;
}

static const char *const H_LOOKUP = "Returns the time taken for probe dns lookup in seconds";
static const char *const H_IPPROTO = "Specifies whether probe ip protocol is IP4 or IP6";

bool probe_resolve(const struct probe_module *m, const char *host, const char *port,
                   int socktype, struct sockaddr_storage *ss, socklen_t *sl,
                   struct probe_result *r)
{
    double t0 = probe_now_s();
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = socktype }, *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    probe_add(r, "probe_dns_lookup_time_seconds", H_LOOKUP, NULL, NULL, probe_now_s() - t0);
    if (rc != 0)
        return probe_fail(r, "resolving \"%s\": %s", host, gai_strerror(rc));
    /* IPv4 unless ip6 is asked for (the blackbox exporter's default is ip6; see probe.h) */
    int want = m->ip == PROBE_IP6 ? AF_INET6 : AF_INET;
    const struct addrinfo *pick = NULL;
    for (const struct addrinfo *a = res; a && !pick; a = a->ai_next)
        if (a->ai_family == want)
            pick = a;
    if (!pick && (m->ip == PROBE_IP_ANY || m->ip_fallback))
        pick = res;
    if (!pick) {
        freeaddrinfo(res);
        return probe_fail(r, "\"%s\" has no %s address", host, want == AF_INET ? "IPv4" : "IPv6");
    }
    memcpy(ss, pick->ai_addr, pick->ai_addrlen);
    *sl = pick->ai_addrlen;
    probe_add(r, "probe_ip_protocol", H_IPPROTO, NULL, NULL, pick->ai_family == AF_INET6 ? 6 : 4);
    freeaddrinfo(res);
    return true;
}

int probe_wait(int fd, short events, int64_t deadline_ms, const atomic_bool *stop)
{
    for (;;) {
        if (stop && atomic_load(stop))
            return 0;
        int64_t left = deadline_ms - probe_now_ms();
        if (left <= 0)
            return 0;
        struct pollfd pf = { .fd = fd, .events = events };
        int n = poll(&pf, 1, (int)(left < 100 ? left : 100)); /* wakes to see stop */
        if (n > 0)
            return 1;
        if (n < 0 && errno != EINTR)
            return 1; /* let the caller's read/write report the error */
    }
}

int probe_connect(const struct sockaddr_storage *ss, socklen_t sl, int socktype,
                  int64_t deadline_ms, const atomic_bool *stop, struct probe_result *r)
{
    int fd = socket(ss->ss_family, socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        probe_fail(r, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, (const struct sockaddr *)ss, sl) == 0)
        return fd;
    if (errno != EINPROGRESS) {
        probe_fail(r, "connect: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (!probe_wait(fd, POLLOUT, deadline_ms, stop)) {
        probe_fail(r, "connect: timed out");
        close(fd);
        return -1;
    }
    int e = 0;
    socklen_t el = sizeof e;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el);
    if (e) {
        probe_fail(r, "connect: %s", strerror(e));
        close(fd);
        return -1;
    }
    return fd;
}

bool probe_regex_any(struct matcher_regex *const *res, size_t n, const char *p, size_t len)
{
    for (size_t i = 0; i < n; i++) {
        size_t s, e;
        if (matcher_regex_find(res[i], (struct vg_str){ p, len }, 0, &s, &e) == 1)
            return true;
    }
    return false;
}
