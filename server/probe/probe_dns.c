/* probe_dns: the DNS prober. The target is the DNS server, "host[:port]" (port 53 by
 * default). A run sends one query (dns_msg.h) for query_name / query_type over UDP, or
 * over TCP with the two-byte length prefix when transport_protocol is tcp, and waits for
 * the response with the query's id before the deadline (other datagrams are ignored).
 * A truncated UDP answer (TC) is judged as it is; it is not retried over TCP.
 *
 * Success: a well-formed response whose rcode is in valid_rcodes (NOERROR by default)
 * and whose answer records (in zone-file text, dns_rr_text) match none of
 * validate_answer_rrs.fail_if_matches_regexp and each of fail_if_not_matches_regexp.
 *
 * Samples (blackbox names): probe_dns_lookup_time_seconds (resolving the server's name),
 * probe_ip_protocol, probe_dns_duration_seconds{phase=resolve|connect|request},
 * probe_dns_answer_rrs, probe_dns_authority_rrs, probe_dns_additional_rrs,
 * probe_dns_query_succeeded, probe_dns_serial (when the answer holds an SOA). */
#include "dns_msg.h"
#include "prober.h"

#include "../../storage/base/vg_alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_MSG 65535

static const char *const H_PHASE = "Duration of DNS request by phase";

static uint16_t random_id(void)
{
    uint16_t id = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, &id, sizeof id) != (ssize_t)sizeof id)
        id = (uint16_t)(probe_now_ms() * 2654435761u >> 7);
    if (fd >= 0)
        close(fd);
    return id;
}

/* Reads exactly n bytes of a TCP answer. */
static bool read_full(int fd, uint8_t *p, size_t n, int64_t deadline_ms, const atomic_bool *stop,
                      struct probe_result *r)
{
    while (n) {
        if (!probe_wait(fd, POLLIN, deadline_ms, stop))
            return probe_fail(r, "timed out waiting for the answer");
        ssize_t got = read(fd, p, n);
        if (got < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (got <= 0)
            return probe_fail(r, "answer: %s", got ? strerror(errno) : "connection closed");
        p += got;
        n -= (size_t)got;
    }
    return true;
}

/* Sends q and receives the answer with the same id into ans; *alen its size. */
static bool exchange(const struct probe_dns_opts *o, int fd, const uint8_t *q, size_t qlen,
                     uint16_t id, uint8_t *ans, size_t *alen, int64_t deadline_ms,
                     const atomic_bool *stop, struct probe_result *r)
{
    if (o->tcp) {
        uint8_t pre[2], framed[2 + 512]; /* one write: length prefix and query together */
        framed[0] = (uint8_t)(qlen >> 8);
        framed[1] = (uint8_t)qlen;
        memcpy(framed + 2, q, qlen);
        if (send(fd, framed, qlen + 2, MSG_NOSIGNAL) != (ssize_t)(qlen + 2))
            return probe_fail(r, "sending the query: %s", strerror(errno));
        if (!read_full(fd, pre, 2, deadline_ms, stop, r))
            return false;
        *alen = (size_t)pre[0] << 8 | pre[1];
        return read_full(fd, ans, *alen, deadline_ms, stop, r);
    }
    if (send(fd, q, qlen, 0) != (ssize_t)qlen)
        return probe_fail(r, "sending the query: %s", strerror(errno));
    for (;;) {
        if (!probe_wait(fd, POLLIN, deadline_ms, stop))
            return probe_fail(r, "timed out waiting for the answer");
        ssize_t n = recv(fd, ans, MAX_MSG, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n < 0)
            return probe_fail(r, "receiving the answer: %s", strerror(errno));
        if (n >= 2 && ((uint16_t)(ans[0] << 8 | ans[1])) == id) {
            *alen = (size_t)n;
            return true;
        }
    }
}

static bool rcode_ok(const struct probe_dns_opts *o, unsigned rcode)
{
    if (!o->nrcodes)
        return rcode == 0;
    for (size_t i = 0; i < o->nrcodes; i++)
        if ((unsigned)o->valid_rcodes[i] == rcode)
            return true;
    return false;
}

/* The serial of an SOA record's data "mname rname serial refresh ...": its third
 * space-separated field, a decimal number. */
static bool soa_serial(const char *s, unsigned long *out)
{
    for (int field = 0; field < 2; field++) {
        while (*s == ' ')
            s++;
        if (!*s)
            return false;
        while (*s && *s != ' ')
            s++;
    }
    while (*s == ' ')
        s++;
    if (*s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || (*end && *end != ' '))
        return false;
    *out = v;
    return true;
}

/* The verdict on a parsed response, and its samples. */
static bool judge(const struct probe_dns_opts *o, const uint8_t *ans, size_t alen,
                  const struct dns_response *resp, struct probe_result *r)
{
    probe_add(r, "probe_dns_answer_rrs", "Returns number of entries in the answer resource record list",
              NULL, NULL, resp->ancount);
    probe_add(r, "probe_dns_authority_rrs",
              "Returns number of entries in the authority resource record list", NULL, NULL,
              resp->nscount);
    probe_add(r, "probe_dns_additional_rrs",
              "Returns number of entries in the additional resource record list", NULL, NULL,
              resp->arcount);
    bool ok = rcode_ok(o, resp->rcode);
    if (!ok)
        probe_fail(r, "rcode %u is not a valid rcode", resp->rcode);
    bool saw_match[PROBE_MAX_REGEXES] = { false };
    char text[1024];
    struct vg_err err;
    for (size_t i = 0; i < resp->nrr; i++) {
        const struct dns_rr *rr = &resp->rr[i];
        if (rr->section != DNS_ANSWER)
            continue;
        if (dns_rr_text(ans, alen, rr, text, sizeof text, &err) < 0)
            return probe_fail(r, "answer record: %s", err.msg);
        if (rr->type == DNS_TYPE_SOA) {
            /* "name\tttl\tIN\tSOA\tmname rname serial ..." */
            const char *p = strrchr(text, '\t');
            unsigned long serial;
            if (p && soa_serial(p + 1, &serial))
                probe_add(r, "probe_dns_serial", "Returns the serial number of the zone", NULL,
                          NULL, (double)serial);
        }
        if (probe_regex_any(o->fail_match, o->nfail_match, text, strlen(text))) {
            ok = probe_fail(r, "answer record matched fail_if_matches_regexp: %s", text);
        }
        for (size_t k = 0; k < o->nfail_not_match; k++)
            if (probe_regex_any(&o->fail_not_match[k], 1, text, strlen(text)))
                saw_match[k] = true;
    }
    for (size_t k = 0; k < o->nfail_not_match; k++)
        if (!saw_match[k])
            ok = probe_fail(r, "no answer record matched fail_if_not_matches_regexp");
    return ok;
}

static bool dns_run(const struct probe_module *m, const char *target, int64_t deadline_ms,
                    const atomic_bool *stop, struct probe_result *r)
{
    const struct probe_dns_opts *o = &m->dns;
    char host[256], port[16];
    bool ok = false, answered = false;
    uint8_t q[512], *ans = NULL;
    size_t qlen, alen = 0;
    int fd = -1;
    struct vg_err err;
    if (!probe_split_hostport(target, "53", host, sizeof host, port, sizeof port)) {
        probe_fail(r, "target \"%s\" is not host[:port]", target);
        goto out;
    }
    uint16_t id = random_id();
    if (dns_build_query(q, sizeof q, id, o->query_name, o->query_type, o->recursion_desired,
                        &qlen, &err) < 0) {
        probe_fail(r, "%s", err.msg);
        goto out;
    }
    int st = o->tcp ? SOCK_STREAM : SOCK_DGRAM;
    struct sockaddr_storage ss;
    socklen_t sl;
    double t0 = probe_now_s();
    bool resolved = probe_resolve(m, host, port, st, &ss, &sl, r);
    double t1 = probe_now_s();
    probe_add(r, "probe_dns_duration_seconds", H_PHASE, "phase", "resolve", t1 - t0);
    if (!resolved)
        goto out;
    fd = probe_connect(&ss, sl, st, deadline_ms, stop, r);
    double t2 = probe_now_s();
    probe_add(r, "probe_dns_duration_seconds", H_PHASE, "phase", "connect", t2 - t1);
    if (fd < 0)
        goto out;
    if (!(ans = vg_malloc(MAX_MSG))) {
        probe_fail(r, "out of memory");
        goto out;
    }
    bool got = exchange(o, fd, q, qlen, id, ans, &alen, deadline_ms, stop, r);
    probe_add(r, "probe_dns_duration_seconds", H_PHASE, "phase", "request", probe_now_s() - t2);
    if (!got)
        goto out;
    struct dns_response *resp = vg_malloc(sizeof *resp);
    if (!resp) {
        probe_fail(r, "out of memory");
        goto out;
    }
    if (dns_parse_response(ans, alen, resp, &err) < 0)
        probe_fail(r, "malformed answer: %s", err.msg);
    else if (!resp->qr || resp->id != id)
        probe_fail(r, "answer is not a response to the query");
    else {
        answered = true;
        ok = judge(o, ans, alen, resp, r);
    }
    vg_free(resp);
out:
    probe_add(r, "probe_dns_query_succeeded", "Displays whether or not the query was executed successfully",
              NULL, NULL, answered);
    if (fd >= 0)
        close(fd);
    vg_free(ans);
    return ok;
}

const struct prober prober_dns = { "dns", dns_run };
