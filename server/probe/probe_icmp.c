/* probe_icmp: the ICMP echo ("ping") prober. The target is a host name or address.
 *
 * Sockets, in this order: an unprivileged ICMP datagram socket (socket(AF_INET,
 * SOCK_DGRAM, IPPROTO_ICMP), allowed when the process's group is inside
 * net.ipv4.ping_group_range; the kernel then sets the echo identifier and hands back
 * only our replies, without the IP header), else a raw socket (needs CAP_NET_RAW; IPv4
 * replies come with their IP header, and replies to other pingers are skipped by
 * identifier). When neither is permitted the probe fails with a reason that says so;
 * nothing is retried and nothing crashes. IPv6 uses ICMPv6 the same way (the kernel
 * fills the ICMPv6 checksum on both socket kinds).
 *
 * One echo request with payload_size bytes of payload (56 by default) is sent; the
 * probe succeeds when the matching echo reply arrives before the deadline.
 * Samples: probe_dns_lookup_time_seconds, probe_ip_protocol,
 * probe_icmp_duration_seconds{phase=resolve|setup|rtt}. */
#include "prober.h"

#include "../../storage/base/vg_alloc.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_PAYLOAD 1400

static const char *const H_PHASE = "Duration of icmp request by phase";

static uint16_t checksum(const uint8_t *p, size_t n)
{
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < n; i += 2)
        sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (n & 1)
        sum += (uint32_t)p[n - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

/* Opens the socket (datagram, else raw). -1 with r->error naming both refusals. */
static int open_socket(int family, bool *raw, struct probe_result *r)
{
    int proto = family == AF_INET6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP;
    int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
    *raw = false;
    if (fd >= 0)
        return fd;
    int e1 = errno;
    fd = socket(family, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
    if (fd >= 0) {
        *raw = true;
        return fd;
    }
    probe_fail(r,
               "ICMP is not permitted: unprivileged ping socket refused (%s; see "
               "net.ipv4.ping_group_range) and raw socket refused (%s; needs CAP_NET_RAW)",
               strerror(e1), strerror(errno));
    return -1;
}

/* Whether buf holds our echo reply. */
static bool is_reply(const uint8_t *buf, size_t n, int family, bool raw, uint16_t id,
                     uint16_t seq)
{
    size_t off = 0;
    if (raw && family == AF_INET) {
        if (n < 20)
            return false;
        off = (size_t)(buf[0] & 0x0f) * 4;
    }
    if (n < off + 8)
        return false;
    const uint8_t *h = buf + off;
    uint8_t want = family == AF_INET6 ? 129 : 0;
    if (h[0] != want || (uint16_t)(h[6] << 8 | h[7]) != seq)
        return false;
    return !raw || (uint16_t)(h[4] << 8 | h[5]) == id; /* a datagram socket's id is the kernel's */
}

static bool icmp_run(const struct probe_module *m, const char *target, int64_t deadline_ms,
                     const atomic_bool *stop, struct probe_result *r)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    double t0 = probe_now_s();
    bool resolved = probe_resolve(m, target, NULL, SOCK_RAW, &ss, &sl, r);
    double t1 = probe_now_s();
    probe_add(r, "probe_icmp_duration_seconds", H_PHASE, "phase", "resolve", t1 - t0);
    if (!resolved)
        return false;
    bool raw;
    int fd = open_socket(ss.ss_family, &raw, r);
    if (fd < 0)
        return false;
    size_t plen = m->icmp.payload_size <= MAX_PAYLOAD ? m->icmp.payload_size : MAX_PAYLOAD;
    uint8_t pkt[8 + MAX_PAYLOAD], buf[2048];
    uint16_t id = (uint16_t)(getpid() ^ (probe_now_ms() & 0xffff));
    uint16_t seq = (uint16_t)(probe_now_ms() >> 3);
    memset(pkt, 0, sizeof pkt);
    pkt[0] = ss.ss_family == AF_INET6 ? 128 : 8;
    pkt[4] = (uint8_t)(id >> 8);
    pkt[5] = (uint8_t)id;
    pkt[6] = (uint8_t)(seq >> 8);
    pkt[7] = (uint8_t)seq;
    for (size_t i = 0; i < plen; i++)
        pkt[8 + i] = (uint8_t)('A' + i % 26);
    if (ss.ss_family == AF_INET) {
        uint16_t c = checksum(pkt, 8 + plen);
        pkt[2] = (uint8_t)(c >> 8);
        pkt[3] = (uint8_t)c;
    }
    double t2 = probe_now_s();
    probe_add(r, "probe_icmp_duration_seconds", H_PHASE, "phase", "setup", t2 - t1);
    bool ok = false;
    if (sendto(fd, pkt, 8 + plen, 0, (struct sockaddr *)&ss, sl) < 0) {
        probe_fail(r, "sending the echo request: %s", strerror(errno));
        goto out;
    }
    for (;;) {
        if (!probe_wait(fd, POLLIN, deadline_ms, stop)) {
            probe_fail(r, "no echo reply before the timeout");
            break;
        }
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n < 0) {
            probe_fail(r, "receiving: %s", strerror(errno));
            break;
        }
        if (is_reply(buf, (size_t)n, ss.ss_family, raw, id, seq)) {
            probe_add(r, "probe_icmp_duration_seconds", H_PHASE, "phase", "rtt",
                      probe_now_s() - t2);
            ok = true;
            break;
        }
    }
out:
    close(fd);
    return ok;
}

const struct prober prober_icmp = { "icmp", icmp_run };
