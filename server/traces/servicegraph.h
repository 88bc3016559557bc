/* servicegraph: edges between services derived from pairs of spans, named as Grafana
 * Tempo's metrics-generator writes them so Grafana's service graph reads them:
 *
 *   traces_service_graph_request_total{client, server, connection_type}
 *   traces_service_graph_request_failed_total{client, server, connection_type}
 *   traces_service_graph_request_server_seconds_bucket{..., le} (and _sum, _count)
 *   traces_service_graph_request_client_seconds_bucket{..., le} (and _sum, _count)
 *
 * Pairing: a CLIENT or PRODUCER span waits under (trace id, its span id); a SERVER or
 * CONSUMER span under (trace id, its parent span id). When the other side arrives within
 * wait_ms the edge client service -> server service is counted: request_total, failed
 * when either side has status ERROR, the server span's duration in server_seconds and
 * the client span's in client_seconds. connection_type is "messaging_system" when a side
 * is PRODUCER or CONSUMER, else empty (the label is then absent).
 *
 * Edges whose other side never comes are dealt with when they expire:
 *   - a client span carrying db.system (or db.system.name) becomes an edge to a virtual
 *     node named by db.name (db.namespace), else by the system, connection_type
 *     "database"; one carrying peer.service an edge to that name, "virtual_node";
 *     both count the client side only;
 *   - anything else is counted as unpaired (servicegraph_stats), by side.
 * A SERVER span without a parent (a trace's root) has no client to wait for: it is
 * counted at once as an edge from the virtual node "user", connection_type
 * "virtual_node", with the server side only.
 *
 * Bounds: at most max_items spans wait (preallocated, so observing allocates nothing
 * once a service name has been seen); when full, expired ones are evicted first, then
 * new spans are dropped (counted). Service names are interned once each, at most
 * max_series of them. The output series are a dtable (dtable.h).
 *
 * Thread safety: every function may be called from any thread; one mutex guards the
 * waiting spans (the dtable has its own, taken inside it). */
#ifndef SERVICEGRAPH_H
#define SERVICEGRAPH_H

#include "../../storage/spanstore/span.h"
#include "dtable.h"

#define SERVICEGRAPH_REQUESTS "traces_service_graph_request_total"
#define SERVICEGRAPH_FAILED "traces_service_graph_request_failed_total"
#define SERVICEGRAPH_SERVER "traces_service_graph_request_server_seconds"
#define SERVICEGRAPH_CLIENT "traces_service_graph_request_client_seconds"

struct servicegraph_opts {
    const double *bounds;  /* latency histogram bounds in seconds, ascending */
    size_t nbounds;
    size_t max_series;     /* output series and interned service names at most */
    size_t max_value_len;  /* label values are cut to this many bytes */
    int64_t idle_ms;       /* output series idle this long are dropped; 0 = never */
    int64_t wait_ms;       /* how long a span waits for its other side */
    size_t max_items;      /* spans waiting at most (>= 1) */
};

struct servicegraph_stats {
    struct dtable_stats series;
    uint64_t waiting;          /* spans waiting now */
    uint64_t paired;           /* edges completed from two spans */
    uint64_t virtual_edges;    /* edges to or from a virtual node */
    uint64_t unpaired_client;  /* client/producer spans expired without a server side */
    uint64_t unpaired_server;  /* server/consumer spans expired without a client side */
    uint64_t dropped;          /* spans dropped: store full, or too many service names */
};

struct servicegraph;

/* NULL with err (VG_EINVAL for bad options, VG_ENOMEM). */
struct servicegraph *servicegraph_new(const struct servicegraph_opts *o, struct vg_err *err);
void servicegraph_free(struct servicegraph *sg); /* accepts NULL */

/* Takes n spans that arrived at now_ms (the clock of the wait). */
void servicegraph_observe(struct servicegraph *sg, const struct span *spans, size_t n,
                          int64_t now_ms);
/* Settles every span that has waited more than wait_ms by now_ms (see above). */
void servicegraph_expire(struct servicegraph *sg, int64_t now_ms);
/* servicegraph_expire, then appends the series stamped now_ms to out. */
int servicegraph_collect(struct servicegraph *sg, int64_t now_ms, struct dtable_out *out,
                         struct vg_err *err);

void servicegraph_stats(struct servicegraph *sg, struct servicegraph_stats *st);

#endif
