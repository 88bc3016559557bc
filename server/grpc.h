/* grpc: the gRPC front end (grpc C core), one completion queue and a small thread pool.
 *
 * Methods are registered from the module registry's grpc rows (grpc_server_register_method),
 * never matched by string at call time. Each call gets one per-call struct used as the
 * completion-queue tag, with a state enum; the next grpc_server_request_call is posted
 * before the current one is handled. Request messages arrive already decompressed (gzip
 * accepted); the handler gets raw protobuf bytes and returns raw response bytes, so the
 * codecs stay transport-free. Only grpc.c includes grpc/grpc.h. */
#ifndef VG_GRPC_H
#define VG_GRPC_H

#include "../storage/base/vg_buf.h"
#include "../storage/base/vg_err.h"

#include <stddef.h>

struct vigil;

/* Handles one unary call: req is the serialized request message; on success returns 0 and
 * appends the serialized response message to resp; on failure returns a vg_code with err
 * filled, which the front end maps to a gRPC status with err->msg as the message. */
typedef int (*grpc_unary_fn)(struct vigil *v, const unsigned char *req, size_t len,
                             struct vg_buf *resp, struct vg_err *err);

struct grpc_method {
    const char *path; /* "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export" */
    grpc_unary_fn fn;
};

struct grpc_server_opts {
    const char *addr;       /* "HOST:PORT" */
    unsigned threads;       /* completion-queue worker threads */
    size_t max_msg_bytes;   /* max receive message size (decompressed) */
};

struct grpc_front;

/* gRPC status code for a vg_code (VG_EINVAL -> INVALID_ARGUMENT (3), ...). The one mapping. */
int grpc_status_for(int code);

/* Starts serving methods (n rows, must outlive the server) on o->addr; handlers get v.
 * NULL with err (VG_EIO naming the address) when it cannot bind. */
struct grpc_front *grpc_front_start(struct vigil *v, const struct grpc_method *const *methods,
                                    size_t nmethods, const struct grpc_server_opts *o,
                                    struct vg_err *err);
unsigned grpc_front_port(const struct grpc_front *g);
/* Shutdown: notify, drain in-flight calls, free. Accepts NULL. */
void grpc_front_stop(struct grpc_front *g);

#endif
