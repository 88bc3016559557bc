/* netaddr: a listen address as the config writes it, turned into a socket address.
 *
 * Forms accepted:
 *   HOST:PORT     HOST an IPv4 address or a host name ("127.0.0.1:9090", "localhost:514")
 *   [V6]:PORT     an IPv6 address in brackets ("[::1]:4318", "[::]:9090")
 *   :PORT         every local address (getaddrinfo's passive wildcard)
 * PORT is decimal, 0-65535; 0 asks the kernel for a free port when bound. An IPv6 host
 * without brackets is refused rather than split at a guessed colon; brackets hold an
 * address only, never a name. A name resolves through getaddrinfo (the first answer is
 * taken), so it may block on DNS: call this at startup, not on a request path.
 *
 * Errors all read `address "<addr>": <what is wrong>`, so a caller only prefixes the
 * config key (vg_err_prefix). Thread-safe (getaddrinfo is). */
#ifndef NETADDR_H
#define NETADDR_H

#include "../storage/base/vg_err.h"

#include <sys/socket.h>

/* The longest HOST accepted, in bytes (a DNS name's limit). */
#define NETADDR_HOST_MAX 255

/* Parses addr for a socket of socktype (SOCK_STREAM or SOCK_DGRAM) and fills *ss and
 * *len (the bytes of *ss in use, for bind). 0, or VG_EINVAL with err naming the address
 * and the fault: no port, a port that is not a number 0-65535, a malformed bracket, an
 * unbracketed IPv6 host, a host over NETADDR_HOST_MAX bytes, or a host that does not
 * resolve (with getaddrinfo's reason). */
int netaddr_parse(const char *addr, int socktype, struct sockaddr_storage *ss, socklen_t *len,
                  struct vg_err *err);

#endif
