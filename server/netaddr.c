/* netaddr: see netaddr.h.
 *
 * The address is split before anything is resolved, so each malformed form gets its
 * own message instead of getaddrinfo's generic "Name or service not known": the
 * bracketed form at its ']', the others at the last ':'. The port is checked here too
 * (getaddrinfo would take "http" as a service name without AI_NUMERICSERV, and reports
 * a bad number only as "Servname not supported"). */
#include "netaddr.h"

#include <netdb.h>
#include <stdbool.h>
#include <string.h>

#define FORMS "HOST:PORT, [IPV6]:PORT or :PORT"

static bool valid_port(const char *p)
{
    size_t n = 0;
    long v = 0;
    for (; p[n]; n++) {
        if (p[n] < '0' || p[n] > '9' || n == 5)
            return false;
        v = v * 10 + (p[n] - '0');
    }
    return n > 0 && v <= 65535;
}

int netaddr_parse(const char *addr, int socktype, struct sockaddr_storage *ss, socklen_t *len,
                  struct vg_err *err)
{
    if (!addr || !*addr)
        return vg_err_set(err, VG_EINVAL, "address \"\": expected " FORMS);
    const char *host = addr, *sep;
    size_t hl;
    int numeric = 0;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close || close[1] != ':' || close == addr + 1)
            return vg_err_set(err, VG_EINVAL, "address \"%s\": expected [IPV6]:PORT", addr);
        host = addr + 1;
        hl = (size_t)(close - host);
        sep = close + 1;
        numeric = AI_NUMERICHOST; /* brackets hold an address, never a name to look up */
    } else {
        sep = strrchr(addr, ':');
        if (!sep)
            return vg_err_set(err, VG_EINVAL, "address \"%s\": no port; expected " FORMS, addr);
        hl = (size_t)(sep - addr);
        if (memchr(addr, ':', hl))
            return vg_err_set(err, VG_EINVAL,
                              "address \"%s\": an IPv6 host goes in brackets, [IPV6]:PORT", addr);
    }
    if (hl > NETADDR_HOST_MAX)
        return vg_err_set(err, VG_EINVAL, "address \"%s\": host is %zu bytes, over the limit of %d",
                          addr, hl, NETADDR_HOST_MAX);
    const char *port = sep + 1;
    if (!valid_port(port))
        return vg_err_set(err, VG_EINVAL,
                          "address \"%s\": port \"%s\" is not a number from 0 to 65535", addr,
                          port);
    char h[NETADDR_HOST_MAX + 1];
    memcpy(h, host, hl);
    h[hl] = '\0';
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = socktype,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV | numeric };
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(hl ? h : NULL, port, &hints, &res);
    if (rc != 0 || !res) {
        if (res)
            freeaddrinfo(res);
        return vg_err_set(err, VG_EINVAL, "address \"%s\": cannot resolve host \"%s\": %s", addr,
                          h, rc ? gai_strerror(rc) : "no address");
    }
    memset(ss, 0, sizeof *ss);
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}
