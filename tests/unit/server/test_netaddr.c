/* Tests server/netaddr.c: the three address forms, both socket types, ports 0 and 65535,
 * and each malformed form's own message. Only numeric hosts, bracketed non-addresses and
 * "localhost" (from /etc/hosts) are used, so no test needs DNS. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "../../../server/netaddr.h"

static struct vg_err err;
static struct sockaddr_storage ss;
static socklen_t len;

static void parse_ok(const char *addr, int type)
{
    vg_err_clear(&err);
    memset(&ss, 0xAA, sizeof ss);
    cr_assert_eq(netaddr_parse(addr, type, &ss, &len, &err), 0, "%s: %s", addr, err.msg);
}

static void parse_bad(const char *addr, const char *want)
{
    vg_err_clear(&err);
    cr_assert_eq(netaddr_parse(addr, SOCK_STREAM, &ss, &len, &err), VG_EINVAL, "%s taken", addr);
    cr_assert_eq(err.code, VG_EINVAL);
    cr_assert(strstr(err.msg, want), "%s: \"%s\" lacks \"%s\"", addr, err.msg, want);
}

Test(netaddr, ipv4_host_and_port)
{
    parse_ok("127.0.0.1:9090", SOCK_STREAM);
    cr_assert_eq(ss.ss_family, AF_INET);
    cr_assert_eq(len, sizeof(struct sockaddr_in));
    const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
    cr_assert_eq(ntohs(in->sin_port), 9090);
    cr_assert_eq(ntohl(in->sin_addr.s_addr), INADDR_LOOPBACK);
    parse_ok("0.0.0.0:65535", SOCK_DGRAM);
    cr_assert_eq(ntohs(((const struct sockaddr_in *)&ss)->sin_port), 65535);
    parse_ok("127.0.0.1:0", SOCK_STREAM);
    cr_assert_eq(ntohs(((const struct sockaddr_in *)&ss)->sin_port), 0, "0: any free port");
}

Test(netaddr, bracketed_ipv6)
{
    parse_ok("[::1]:4318", SOCK_STREAM);
    cr_assert_eq(ss.ss_family, AF_INET6);
    cr_assert_eq(len, sizeof(struct sockaddr_in6));
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
    cr_assert_eq(ntohs(in6->sin6_port), 4318);
    cr_assert(IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr));
    parse_ok("[::]:514", SOCK_DGRAM);
    cr_assert(IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&ss)->sin6_addr));
}

Test(netaddr, empty_host_is_every_address)
{
    parse_ok(":8080", SOCK_STREAM);
    cr_assert(ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
        cr_assert_eq(in->sin_addr.s_addr, htonl(INADDR_ANY));
        cr_assert_eq(ntohs(in->sin_port), 8080);
    } else {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
        cr_assert(IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr));
        cr_assert_eq(ntohs(in6->sin6_port), 8080);
    }
}

Test(netaddr, host_name)
{
    parse_ok("localhost:9090", SOCK_STREAM);
    cr_assert(ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
}

Test(netaddr, malformed_addresses_say_what_is_wrong)
{
    parse_bad("", "expected HOST:PORT, [IPV6]:PORT or :PORT");
    parse_bad(NULL, "expected HOST:PORT");
    parse_bad("nocolon", "address \"nocolon\": no port; expected HOST:PORT");
    parse_bad("127.0.0.1:", "port \"\" is not a number from 0 to 65535");
    parse_bad("127.0.0.1:http", "port \"http\" is not a number");
    parse_bad("127.0.0.1:65536", "port \"65536\" is not a number from 0 to 65535");
    parse_bad("127.0.0.1:000080", "port \"000080\"");
    parse_bad("127.0.0.1:-1", "port \"-1\"");
    parse_bad("127.0.0.1: 80", "port \" 80\"");
    parse_bad("[::1:4318", "expected [IPV6]:PORT");
    parse_bad("[::1]4318", "expected [IPV6]:PORT");
    parse_bad("[]:4318", "expected [IPV6]:PORT");
    parse_bad("[::1]:43:18", "port \"43:18\"");
    parse_bad("::1:4318", "an IPv6 host goes in brackets");
    parse_bad("[not-an-ip]:80", "cannot resolve host \"not-an-ip\"");
    parse_bad("[127.0.0.1.5]:80", "cannot resolve host \"127.0.0.1.5\"");
}

Test(netaddr, host_length_limit)
{
    char addr[NETADDR_HOST_MAX + 16];
    memset(addr, 'a', NETADDR_HOST_MAX + 1);
    strcpy(addr + NETADDR_HOST_MAX + 1, ":80");
    parse_bad(addr, "host is 256 bytes, over the limit of 255");
    vg_err_clear(&err);
    /* at the limit the length is fine and the host merely is no address (in brackets, so
     * nothing is looked up in DNS) */
    addr[0] = '[';
    memset(addr + 1, 'a', NETADDR_HOST_MAX);
    strcpy(addr + NETADDR_HOST_MAX + 1, "]:80");
    cr_assert_eq(netaddr_parse(addr, SOCK_STREAM, &ss, &len, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "cannot resolve host"), "%s", err.msg);
}
