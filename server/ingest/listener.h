/* listener: the bound UDP and TCP sockets of a push receiver that has no HTTP front end
 * (syslog, StatsD), with their receiving threads, the TCP connection limit, the idle
 * timeout and a clean shutdown. The receiver supplies callbacks for what arrives.
 *
 * Sockets: udp_addr and tcp_addr (netaddr.h, "HOST:PORT" or ":PORT"; "" = none) are
 * bound by listener_new, non-blocking and close-on-exec. UDP asks for a 4 MiB receive
 * buffer (best effort) so bursts wait in the kernel while the receiver writes a batch;
 * TCP sets SO_REUSEADDR and a backlog of 128. Port 0 binds a free port; the bound
 * ports are listener_udp_port / listener_tcp_port.
 *
 * Threads (started by listener_start, one per bound socket): "<name>-udp" polls the UDP
 * socket and reads up to 64 datagrams per wake, each handed to on_datagram; one longer
 * than max_datagram arrives cut to max_datagram bytes with truncated set (MSG_TRUNC
 * tells its real length). "<name>-tcp" runs one epoll loop over the listening socket and
 * every connection: it accepts while fewer than max_conns are open (the rest are
 * closed at once: LISTENER_REFUSED), reads up to 16 x 64 KiB per connection per wake
 * (so one busy peer cannot starve the others) and hands the bytes to on_data. Each
 * connection ends in conn_close with the reason: the peer closed it, a read failed,
 * on_data refused its bytes (returned < 0), it was silent for idle_ms (checked about
 * once a second; 0 = never), or the listener stops. on_event reports each accept,
 * refusal and close with the number of connections open after it.
 *
 * Per-thread state: thread_init (optional) makes each receiving thread's own state
 * ("local", e.g. a parse arena), handed to every callback of that thread and to
 * thread_fini when it ends; without it local is ctx. conn_open makes a connection's
 * state (NULL refuses the connection). Callbacks of the two threads run concurrently:
 * what they share, the receiver locks.
 *
 * Shutdown: listener_free wakes both threads through a pipe, which every poll watches,
 * waits for them (each open connection gets conn_close with LISTENER_SHUTDOWN, so a
 * last unterminated frame can still be delivered), then closes the sockets. After it
 * returns no callback runs. */
#ifndef LISTENER_H
#define LISTENER_H

#include "../../storage/base/vg_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum listener_event {
    LISTENER_ACCEPTED,
    LISTENER_REFUSED,     /* max_conns open, or no memory for it */
    LISTENER_CLOSED,      /* by the peer */
    LISTENER_ERROR,       /* a read failed */
    LISTENER_REJECTED,    /* on_data returned < 0 */
    LISTENER_IDLE_TIMEOUT,
    LISTENER_SHUTDOWN,    /* listener_free */
};
/* "accepted", "refused", "closed", "error", "rejected", "idle_timeout", "shutdown". */
const char *listener_event_name(enum listener_event e);

struct listener_opts {
    const char *name;     /* log module and thread name prefix (at most 10 bytes) */
    const char *udp_key;  /* config key named in errors, e.g. "syslog.udp_addr" */
    const char *udp_addr; /* "" or NULL: no UDP socket */
    const char *tcp_key;
    const char *tcp_addr; /* "" or NULL: no TCP socket */
    size_t max_datagram;  /* >= 1 */
    size_t max_conns;     /* >= 1 */
    int64_t idle_ms;      /* 0 = never */
    void *ctx;
    /* optional: 0, or < 0 to stop that thread (logged) */
    int (*thread_init)(void *ctx, const char *transport, void **local);
    void (*thread_fini)(void *local);
    /* required when udp_addr is set */
    void (*on_datagram)(void *local, const char *p, size_t n, bool truncated);
    /* required when tcp_addr is set */
    void *(*conn_open)(void *local);
    int (*on_data)(void *local, void *conn, const char *p, size_t n);
    void (*conn_close)(void *local, void *conn, enum listener_event why);
    /* optional; from the TCP thread */
    void (*on_event)(void *ctx, enum listener_event e, size_t open);
};

struct listener;

/* Binds the configured sockets; nothing runs yet. The opts' strings need not outlive the
 * call (the callbacks and ctx must outlive the listener). NULL with err: VG_EINVAL
 * naming the key of an address that does not parse, VG_EIO naming key and address when
 * the socket cannot be bound, VG_ENOMEM. */
struct listener *listener_new(const struct listener_opts *o, struct vg_err *err);
/* Starts the receiving threads and logs "listening" (module name) with the addresses and
 * the ports bound. 0, or VG_ENOMEM when a thread cannot be made (those started are
 * stopped by listener_free). */
int listener_start(struct listener *l, struct vg_err *err);
/* Stops the threads as described above and closes every socket. Accepts NULL. */
void listener_free(struct listener *l);

/* The ports bound (0 when that socket is not configured). Thread-safe. */
uint16_t listener_udp_port(const struct listener *l);
uint16_t listener_tcp_port(const struct listener *l);

#endif
