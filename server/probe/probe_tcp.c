/* probe_tcp: the TCP prober. The target is "host:port" ("[v6]:port"). A run resolves,
 * connects before the deadline, then walks query_response in order like the blackbox
 * exporter: a step with `expect` reads lines ('\n'-terminated, a trailing '\r' dropped)
 * until one matches the regex (the connection closing or the deadline first fails the
 * probe, probe_failed_due_to_regex 1); a step with `send` writes the text followed by
 * "\n". Lines are read up to 64 KiB each; a longer one is matched in 64 KiB pieces.
 * TLS (blackbox's tls / starttls) is not supported.
 *
 * Samples: probe_dns_lookup_time_seconds, probe_ip_protocol, probe_failed_due_to_regex,
 * probe_tcp_duration_seconds{phase="connect"}. */
#include "prober.h"

#include "../../storage/base/vg_alloc.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LINE_MAX_BYTES 65536

struct reader {
    int fd;
    char buf[LINE_MAX_BYTES];
    size_t len;
    bool eof;
};

/* The next line into *line (pointing into r->buf, valid until the next call). 1 a line,
 * 0 closed or timed out (reason in res), -1 socket error. */
static int next_line(struct reader *rd, int64_t deadline_ms, const atomic_bool *stop,
                     struct vg_str *line, size_t *consumed, struct probe_result *res)
{
    for (;;) {
        char *nl = memchr(rd->buf, '\n', rd->len);
        if (nl || rd->len == sizeof rd->buf || (rd->eof && rd->len)) {
            size_t n = nl ? (size_t)(nl - rd->buf) : rd->len;
            *consumed = n + (nl != NULL);
            if (n && rd->buf[n - 1] == '\r')
                n--;
            *line = (struct vg_str){ rd->buf, n };
            return 1;
        }
        if (rd->eof) {
            probe_fail(res, "connection closed before an expected line");
            return 0;
        }
        if (!probe_wait(rd->fd, POLLIN, deadline_ms, stop)) {
            probe_fail(res, "timed out waiting for an expected line");
            return 0;
        }
        ssize_t n = read(rd->fd, rd->buf + rd->len, sizeof rd->buf - rd->len);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n < 0) {
            probe_fail(res, "read: %s", strerror(errno));
            return -1;
        }
        if (n == 0)
            rd->eof = true;
        rd->len += (size_t)n;
    }
}

static bool send_all(int fd, const char *p, size_t n, int64_t deadline_ms, const atomic_bool *stop,
                     struct probe_result *r)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (!probe_wait(fd, POLLOUT, deadline_ms, stop))
                return probe_fail(r, "timed out sending");
            continue;
        }
        if (w < 0)
            return probe_fail(r, "send: %s", strerror(errno));
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static bool run_steps(const struct probe_tcp_opts *o, int fd, int64_t deadline_ms,
                      const atomic_bool *stop, struct probe_result *r, bool *regex_failed)
{
    struct reader *rd = vg_malloc(sizeof *rd); /* 64 KiB: not on a worker's stack */
    if (!rd)
        return probe_fail(r, "out of memory");
    rd->fd = fd;
    rd->len = 0;
    rd->eof = false;
    bool ok = true;
    for (size_t i = 0; ok && i < o->nsteps; i++) {
        const struct probe_tcp_step *st = &o->steps[i];
        if (st->expect) {
            for (;;) {
                struct vg_str line;
                size_t used;
                int rc = next_line(rd, deadline_ms, stop, &line, &used, r);
                if (rc <= 0) {
                    *regex_failed = rc == 0;
                    ok = false;
                    break;
                }
                size_t s, e;
                bool hit = matcher_regex_find(st->expect, line, 0, &s, &e) == 1;
                memmove(rd->buf, rd->buf + used, rd->len - used);
                rd->len -= used;
                if (hit)
                    break;
            }
            if (!ok) { /* say which step failed, with the reading's reason */
                char why[sizeof r->error];
                memcpy(why, r->error, sizeof why);
                r->error[0] = '\0';
                probe_fail(r, "no line matched expect \"%s\" (%s)", st->expect_src, why);
            }
        }
        if (ok && st->send) {
            ok = send_all(fd, st->send, strlen(st->send), deadline_ms, stop, r) &&
                 send_all(fd, "\n", 1, deadline_ms, stop, r);
        }
    }
    vg_free(rd);
    return ok;
}

static bool tcp_run(const struct probe_module *m, const char *target, int64_t deadline_ms,
                    const atomic_bool *stop, struct probe_result *r)
{
    char host[256], port[16];
    bool regex_failed = false, ok = false;
    if (!probe_split_hostport(target, NULL, host, sizeof host, port, sizeof port)) {
        probe_fail(r, "target \"%s\" is not host:port", target);
        goto out;
    }
    struct sockaddr_storage ss;
    socklen_t sl;
    if (!probe_resolve(m, host, port, SOCK_STREAM, &ss, &sl, r))
        goto out;
    double t0 = probe_now_s();
    int fd = probe_connect(&ss, sl, SOCK_STREAM, deadline_ms, stop, r);
    probe_add(r, "probe_tcp_duration_seconds", "Duration of tcp connection by phase", "phase",
              "connect", probe_now_s() - t0);
    if (fd < 0)
        goto out;
    ok = run_steps(&m->tcp, fd, deadline_ms, stop, r, &regex_failed);
    close(fd);
out:
    probe_add(r, "probe_failed_due_to_regex", "Indicates if probe failed due to regex", NULL,
              NULL, regex_failed);
    return ok;
}

const struct prober prober_tcp = { "tcp", tcp_run };
