/* grpc: the gRPC front end on grpc C core (Debian 12: libgrpc 1.51). See grpc.h.
 *
 * Shape. One server, one completion queue (created for grpc_completion_queue_next) and
 * o->threads worker threads named "grpc-N" that take turns pulling from it (see Workers).
 * Every method row is registered once with grpc_server_register_method
 * (GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER), so the request message arrives together
 * with the new call and no method string is ever compared at call time. One more request
 * is kept posted with grpc_server_request_call for calls to unregistered methods: grpc
 * core does not answer those itself, it parks them until the application asks for them
 * (they would hang until their deadline), so we take them and answer UNIMPLEMENTED.
 *
 * Per-call state. Each posted request is one struct rpc, which is also the completion
 * queue tag of everything done on that call:
 *   RPC_REQUESTED     a request is posted; the tag completes when a call arrives (ok=1)
 *                     or the server shuts down (ok=0: freed, not re-posted).
 *   RPC_SENT_RESPONSE the call was handled and one batch (send initial metadata, the
 *                     response message or none, send status, recv close) is in flight;
 *                     when it completes, whatever the outcome, the call is released and
 *                     the struct freed.
 * On arrival the worker first posts a fresh struct rpc for the same method and only then
 * runs the handler, so a slow handler never leaves its method without a posted request.
 * If that post cannot be made (out of memory) the slot is marked unposted and the call's
 * own struct is re-posted when its response completes, so no method stays unserved.
 * Every live struct rpc sits on the front's list (under mu) so shutdown can tell when the
 * queue holds no more of our tags.
 *
 * Wire behaviour. Requests may be gzip- or deflate-compressed (grpc-encoding); core's
 * decompression filter inflates them, and the byte buffer reader would inflate any
 * still-compressed buffer, so handlers always see plain protobuf bytes. The receive limit
 * is o->max_msg_bytes (GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH; core answers RESOURCE_EXHAUSTED
 * above it; 0 keeps core's 4 MiB default; o->threads 0 means one). A unary call that
 * carries no message gets INVALID_ARGUMENT. Responses are sent uncompressed. Handler failures become a status from
 * grpc_status_for with err.msg as the status message and no response message.
 * SO_REUSEPORT is switched off so that a second server on a taken port fails to bind
 * instead of silently sharing the port.
 * grpc core's own diagnostics are routed into vg_log (gpr_set_log_function).
 *
 * Metrics (when started with v && v->metrics). Every call we answer is counted once:
 *   vigil_grpc_requests_total{method,code}       code is the status name ("OK",
 *                                                "INVALID_ARGUMENT", "UNIMPLEMENTED", ...)
 *   vigil_grpc_request_duration_seconds{method}  from the call's arrival (with its request
 *                                                message) to its response being queued
 * method is the registered path; calls to unregistered methods share method="unknown" so
 * a client cannot grow the label set. Counting happens before the response is queued, so
 * a client that has its answer also sees it counted. Calls core refuses on its own (a
 * message over the receive limit) never reach us and are not counted.
 *
 * Shutdown (grpc_front_stop). grpc_server_shutdown_and_notify stops new calls and lets
 * in-flight ones finish; after STOP_GRACE_MS with calls still open,
 * grpc_server_cancel_all_calls cuts them. Once the shutdown tag has arrived and no struct
 * rpc is alive, the queue is shut down and drained (workers exit on GRPC_QUEUE_SHUTDOWN),
 * threads are joined, and server and queue destroyed. grpc_init/grpc_shutdown are paired
 * per front, so the library is reference-counted with any other user in the process.
 *
 * Workers (the gate). Only one worker at a time, the poller, waits in
 * grpc_completion_queue_next; it runs the handlers of the calls it takes itself. With
 * several threads inside the queue, grpc core (epoll1) hands the polling role to another
 * thread each time one returns with an event, and the event and its response completion
 * mostly woke different threads: about five futex calls per call and a third of the
 * server's CPU outside the handlers. One worker, the watcher, looks every WATCH_MS while
 * the poller is in a handler; when the same handler is still running after a full watch
 * (a slow store write, an fsync), the watcher becomes the poller and a waiting worker
 * becomes the watcher, so up to o->threads handlers still run at once, each further one
 * starting after at most 2 * WATCH_MS. The old poller, once its handler returns, waits as
 * watcher or follower. A watcher that saw a whole watch go by without a call sleeps until
 * the poller's next call wakes it, so an idle server does not wake up every millisecond.
 * Measured (bench/spangen --preencode, 1M spans over gRPC from 4 connections, 100 spans a
 * request; server CPU from /proc/PID/stat until idle, as bench/traces_bench.sh counts it;
 * 3 rounds each, old and new alternating, 2 shared cores), together with otlp_traces'
 * per-thread arena and reader change: with spanstore_write stubbed out (a private copy
 * of the tree, for profiling only), server CPU per 1M spans 0.52-0.67 s -> 0.38-0.39 s;
 * with the real span store 4.87-5.29 s -> 4.46-4.63 s, p99 5.8-8.3 ms -> 3.9-6.3 ms.
 * strace -c over 2,000 calls: futex calls 10,383 -> 396.
 *
 * Thread safety: handlers run concurrently on the worker threads and must be thread-safe.
 * grpc_front_start/stop are called by one owner thread. */
#include "grpc.h"

#include "../storage/base/vg_alloc.h"
#include "../storage/base/vg_log.h"
#include "metrics.h"
#include "vigil.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/compression.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/status.h>
#include <grpc/support/log.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* How long in-flight calls may run on after shutdown starts before they are cancelled. */
#define STOP_GRACE_MS 5000
/* How long a handler may hold the poller before the watcher takes over polling. */
#define WATCH_MS 1
/* A worker keeps its buffer for multi-slice request messages up to this capacity. */
#define FLAT_KEEP_BYTES ((size_t)1 << 20)
/* Longest method name echoed back in an UNIMPLEMENTED message. */
#define METHOD_ECHO_MAX 200

enum rpc_state { RPC_REQUESTED, RPC_SENT_RESPONSE };

struct rpc {
    enum rpc_state state;
    struct grpc_front *g;
    size_t slot;               /* index into methods, or g->nmethods for unregistered */
    grpc_call *call;
    gpr_timespec deadline;     /* registered calls only */
    grpc_metadata_array md;
    grpc_byte_buffer *payload; /* registered calls: the request message, may stay NULL */
    grpc_call_details details; /* unregistered calls: method and host */
    grpc_byte_buffer *resp;    /* response message while the batch is in flight */
    grpc_slice status_msg;     /* status message while the batch is in flight */
    int cancelled;             /* recv_close_on_server output */
    struct rpc *prev, *next;   /* the front's live list */
};

struct grpc_front {
    struct vigil *v;
    const struct grpc_method *const *methods;
    size_t nmethods;
    void **registered; /* nmethods handles from grpc_server_register_method */
    grpc_server *server;
    grpc_completion_queue *cq;
    pthread_t *threads;
    unsigned nthreads;
    int port;
    char shutdown_tag; /* its address is the server-shutdown tag */

    pthread_mutex_t mu;      /* guards everything below */
    pthread_cond_t cond;     /* signalled when live reaches 0 or shutdown_done is set */
    struct rpc *live;        /* every struct rpc whose tag may still come back */
    size_t nlive;
    bool stopping;           /* no more requests are posted */
    bool *unposted;          /* per slot (nmethods + 1): no request posted, see rpc_post */
    bool shutdown_done;      /* the shutdown tag came back */
    struct vg_complaint unknown_method;

    struct metric_family *requests; /* NULL when started without a metrics registry */
    struct metric_family *duration;

    /* The worker gate (see "Workers" at the top); guarded by gate_mu. */
    pthread_mutex_t gate_mu;
    pthread_cond_t watch_cond;  /* the watcher sleeps here */
    pthread_cond_t follow_cond; /* followers sleep here */
    unsigned nroles;            /* workers that have taken a role so far */
    uint64_t lead_gen;          /* bumped whenever the poller role changes hands */
    uint64_t call_seq;          /* bumped when the poller starts a handler */
    bool poller_busy;           /* the poller runs a handler (not inside the queue) */
    bool watcher_set;           /* some worker holds the watcher role */
    bool watcher_asleep;        /* the watcher waits without timeout (server idle) */
    bool queue_down;            /* the queue returned GRPC_QUEUE_SHUTDOWN */
};

int grpc_status_for(int code)
{
    switch (code) {
    case VG_OK:
        return GRPC_STATUS_OK;
    case VG_EINVAL:
    case VG_ECONFLICT:
    case VG_EMEDIA:
        return GRPC_STATUS_INVALID_ARGUMENT;
    case VG_ETOOLARGE:
    case VG_ENOMEM:
        return GRPC_STATUS_RESOURCE_EXHAUSTED;
    /* Overload asks for a retry. So does a storage failure (LevelDB write or fsync error,
     * full disk): it is usually transient and nothing was acknowledged. OTLP exporters
     * retry UNAVAILABLE with back-off but drop the batch on INTERNAL (OTLP spec,
     * "Failures"). */
    case VG_EOVERLOAD:
    case VG_EIO:
        return GRPC_STATUS_UNAVAILABLE;
    case VG_ENOTFOUND:
        return GRPC_STATUS_NOT_FOUND;
    case VG_EMETHOD:
        return GRPC_STATUS_UNIMPLEMENTED;
    case VG_EINTERNAL:
    default:
        return GRPC_STATUS_INTERNAL;
    }
}

/* The canonical status name (grpc/status.h, "Status codes and their use in gRPC"), used
 * as the code label so it reads like the clients' own error messages. */
static const char *status_name(int status)
{
    static const char *const names[] = {
        "OK",                 "CANCELLED",         "UNKNOWN",   "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",  "NOT_FOUND",         "ALREADY_EXISTS",
        "PERMISSION_DENIED",  "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
        "ABORTED",            "OUT_OF_RANGE",      "UNIMPLEMENTED", "INTERNAL",
        "UNAVAILABLE",        "DATA_LOSS",         "UNAUTHENTICATED",
    };
    if (status < 0 || (size_t)status >= sizeof names / sizeof names[0])
        return "UNKNOWN";
    return names[status];
}

/* ---- per-call structs ---------------------------------------------------------------- */

/* Releases what a struct rpc holds from core and makes it a fresh, unposted request. */
static void rpc_clear(struct rpc *r)
{
    if (r->call)
        grpc_call_unref(r->call);
    r->call = NULL;
    grpc_metadata_array_destroy(&r->md);
    grpc_metadata_array_init(&r->md);
    grpc_call_details_destroy(&r->details);
    grpc_call_details_init(&r->details);
    if (r->payload)
        grpc_byte_buffer_destroy(r->payload);
    r->payload = NULL;
    if (r->resp)
        grpc_byte_buffer_destroy(r->resp);
    r->resp = NULL;
    grpc_slice_unref(r->status_msg);
    r->status_msg = grpc_empty_slice();
    r->cancelled = 0;
    r->state = RPC_REQUESTED;
}

/* Unlinks, releases and frees r. */
static void rpc_free(struct rpc *r)
{
    struct grpc_front *g = r->g;
    pthread_mutex_lock(&g->mu);
    if (r->prev)
        r->prev->next = r->next;
    else
        g->live = r->next;
    if (r->next)
        r->next->prev = r->prev;
    if (--g->nlive == 0)
        pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->mu);
    rpc_clear(r);
    grpc_metadata_array_destroy(&r->md);
    grpc_call_details_destroy(&r->details);
    vg_free(r);
}

/* Posts r (linked, cleared) as the request for its slot. Called with mu held, so a post
 * is ordered before grpc_front_stop's shutdown call: every posted request is one the
 * server fails at shutdown. On failure the slot is marked unposted. */
static bool rpc_request_locked(struct rpc *r)
{
    struct grpc_front *g = r->g;
    grpc_call_error ce = GRPC_CALL_ERROR;
    if (!g->stopping) {
        if (r->slot < g->nmethods)
            ce = grpc_server_request_registered_call(g->server, g->registered[r->slot],
                                                     &r->call, &r->deadline, &r->md,
                                                     &r->payload, g->cq, g->cq, r);
        else
            ce = grpc_server_request_call(g->server, &r->call, &r->details, &r->md, g->cq,
                                          g->cq, r);
        if (ce != GRPC_CALL_OK) {
            char n[16];
            snprintf(n, sizeof n, "%d", (int)ce);
            vg_log(VG_LOG_ERROR, "grpc", "posting a call request failed", "grpc_call_error",
                   n, NULL);
        }
    }
    g->unposted[r->slot] = ce != GRPC_CALL_OK && !g->stopping;
    return ce == GRPC_CALL_OK;
}

/* Posts a new request for the method in slot (nmethods: any unregistered method). When
 * that cannot be done (out of memory), the slot is marked unposted and the next struct
 * rpc of that slot to finish is re-posted instead of freed (rpc_done), so a method is
 * never left without a request for longer than one call. */
static void rpc_post(struct grpc_front *g, size_t slot)
{
    struct rpc *r = vg_calloc(1, sizeof *r);
    if (!r) {
        pthread_mutex_lock(&g->mu);
        g->unposted[slot] = !g->stopping;
        pthread_mutex_unlock(&g->mu);
        vg_log(VG_LOG_ERROR, "grpc", "out of memory posting a call request", NULL);
        return;
    }
    r->g = g;
    r->slot = slot;
    r->state = RPC_REQUESTED;
    r->status_msg = grpc_empty_slice();
    grpc_metadata_array_init(&r->md);
    grpc_call_details_init(&r->details);

    pthread_mutex_lock(&g->mu);
    r->next = g->live;
    if (g->live)
        g->live->prev = r;
    g->live = r;
    g->nlive++;
    bool posted = rpc_request_locked(r);
    pthread_mutex_unlock(&g->mu);
    if (!posted)
        rpc_free(r);
}

/* r's tag came back for the last time (its request failed, or its response batch ended):
 * re-post it if its slot lost its request, otherwise free it. */
static void rpc_done(struct rpc *r)
{
    struct grpc_front *g = r->g;
    pthread_mutex_lock(&g->mu);
    /* A failed request outside shutdown leaves its slot with nothing posted. */
    if (r->state == RPC_REQUESTED && !g->stopping)
        g->unposted[r->slot] = true;
    bool recycle = g->unposted[r->slot];
    pthread_mutex_unlock(&g->mu);
    if (recycle) {
        rpc_clear(r);
        pthread_mutex_lock(&g->mu);
        bool posted = rpc_request_locked(r);
        pthread_mutex_unlock(&g->mu);
        if (posted)
            return;
    }
    rpc_free(r);
}

/* Copies the request message into contiguous bytes: a single-slice message (the usual
 * case) is used in place via *hold; otherwise slices are appended to flat. */
static int rpc_read_payload(grpc_byte_buffer *bb, grpc_slice *hold, struct vg_buf *flat,
                            const unsigned char **p, size_t *len, struct vg_err *err)
{
    grpc_byte_buffer_reader rd;
    if (!grpc_byte_buffer_reader_init(&rd, bb))
        return vg_err_set(err, VG_EINVAL, "request message cannot be decompressed");
    grpc_slice s;
    int rc = 0;
    if (!grpc_byte_buffer_reader_next(&rd, &s)) {
        *p = (const unsigned char *)"";
        *len = 0;
    } else {
        grpc_slice s2;
        if (!grpc_byte_buffer_reader_next(&rd, &s2)) {
            /* Point into the caller's copy: a small slice keeps its bytes inline in the
             * struct, so a pointer into the local s would dangle after return. */
            *hold = s;
            *p = GRPC_SLICE_START_PTR(*hold);
            *len = GRPC_SLICE_LENGTH(*hold);
        } else {
            /* One allocation (none when the worker's buffer is already big enough). */
            vg_buf_reserve(flat, grpc_byte_buffer_length(bb));
            vg_buf_append(flat, GRPC_SLICE_START_PTR(s), GRPC_SLICE_LENGTH(s));
            grpc_slice_unref(s);
            do {
                vg_buf_append(flat, GRPC_SLICE_START_PTR(s2), GRPC_SLICE_LENGTH(s2));
                grpc_slice_unref(s2);
            } while (grpc_byte_buffer_reader_next(&rd, &s2));
            if (vg_buf_failed(flat))
                rc = vg_err_set(err, VG_ENOMEM, "out of memory copying a %zu-byte request",
                                flat->len);
            *p = (const unsigned char *)flat->p;
            *len = flat->len;
        }
    }
    grpc_byte_buffer_reader_destroy(&rd);
    return rc;
}

/* Runs the handler for a registered call; fills resp (on success) or err. flat is the
 * worker's buffer for a request message that arrived in several slices. */
static int rpc_handle(struct rpc *r, struct vg_buf *flat, struct vg_buf *resp,
                      struct vg_err *err)
{
    const struct grpc_method *m = r->g->methods[r->slot];
    if (!r->payload)
        return vg_err_set(err, VG_EINVAL, "%s: the call carried no request message "
                          "(unary methods take exactly one)", m->path);
    grpc_slice hold = grpc_empty_slice();
    vg_buf_reset(flat);
    const unsigned char *p = NULL;
    size_t len = 0;
    int rc = rpc_read_payload(r->payload, &hold, flat, &p, &len, err);
    if (rc == 0) {
        rc = m->fn(r->g->v, p, len, resp, err);
        if (rc == 0 && vg_buf_failed(resp))
            rc = vg_err_set(err, VG_ENOMEM, "%s: out of memory building the response",
                            m->path);
        else if (rc != 0 && err->code == 0)
            err->code = rc; /* a handler that returned a code without setting err */
    }
    grpc_slice_unref(hold);
    if (flat->cap > FLAT_KEEP_BYTES)
        vg_buf_free(flat); /* a rare big message: do not keep its memory */
    /* The request is no longer needed; free it now rather than after the send. */
    grpc_byte_buffer_destroy(r->payload);
    r->payload = NULL;
    return rc;
}

/* Sends initial metadata, the response message (when ok) and the status in one batch,
 * together with recv close so the batch also tells us when the client is done. */
static void rpc_respond(struct rpc *r, struct vg_buf *resp, int status, const char *msg)
{
    grpc_op ops[4];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (status == GRPC_STATUS_OK) {
        size_t len = 0;
        char *bytes = vg_buf_steal(resp, &len);
        /* The slice takes the buffer: grpc frees it with vg_free once it is sent. */
        grpc_slice s = bytes ? grpc_slice_new(bytes, len, vg_free) : grpc_empty_slice();
        r->resp = grpc_raw_byte_buffer_create(&s, 1);
        grpc_slice_unref(s);
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = r->resp;
    }
    if (status != GRPC_STATUS_OK)
        r->status_msg = grpc_slice_from_copied_string(msg);
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = (grpc_status_code)status;
    ops[n++].data.send_status_from_server.status_details =
        status == GRPC_STATUS_OK ? NULL : &r->status_msg;
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n++].data.recv_close_on_server.cancelled = &r->cancelled;

    r->state = RPC_SENT_RESPONSE;
    grpc_call_error ce = grpc_call_start_batch(r->call, ops, n, r, NULL);
    if (ce != GRPC_CALL_OK) {
        char e[16];
        snprintf(e, sizeof e, "%d", (int)ce);
        vg_log(VG_LOG_ERROR, "grpc", "sending a response failed", "grpc_call_error", e, NULL);
        grpc_call_cancel(r->call, NULL);
        rpc_done(r);
    }
}

/* Counts a call answered with status in /metrics (see the top comment). */
static void rpc_count(const struct rpc *r, int status, const struct timespec *start)
{
    const struct grpc_front *g = r->g;
    const char *method = r->slot < g->nmethods ? g->methods[r->slot]->path : "unknown";
    if (g->requests)
        metric_add(g->requests, 1, method, status_name(status));
    if (g->duration) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        metric_observe(g->duration,
                       (double)(now.tv_sec - start->tv_sec) +
                           (double)(now.tv_nsec - start->tv_nsec) / 1e9,
                       method);
    }
}

/* A call arrived for r (state REQUESTED, ok=1): re-post, handle, count, send. */
static void rpc_arrived(struct rpc *r, struct vg_buf *flat)
{
    struct grpc_front *g = r->g;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    rpc_post(g, r->slot);

    struct vg_buf resp;
    vg_buf_init(&resp);
    if (r->slot == g->nmethods) {
        char msg[METHOD_ECHO_MAX + 64];
        size_t mlen = GRPC_SLICE_LENGTH(r->details.method);
        snprintf(msg, sizeof msg, "unknown method %.*s",
                 (int)(mlen > METHOD_ECHO_MAX ? METHOD_ECHO_MAX : mlen),
                 (const char *)GRPC_SLICE_START_PTR(r->details.method));
        vg_complain(&g->unknown_method, 60000, VG_LOG_WARN, "grpc",
                    "call to an unregistered method", msg);
        rpc_count(r, GRPC_STATUS_UNIMPLEMENTED, &start);
        rpc_respond(r, &resp, GRPC_STATUS_UNIMPLEMENTED, msg);
        return;
    }
    struct vg_err err;
    vg_err_clear(&err);
    int rc = rpc_handle(r, flat, &resp, &err);
    int status = rc == 0 ? GRPC_STATUS_OK : grpc_status_for(rc);
    rpc_count(r, status, &start);
    rpc_respond(r, &resp, status, rc == 0 ? "" : err.msg);
    vg_buf_free(&resp);
}

/* ---- workers ------------------------------------------------------------------------- */

/* Takes one event off the queue and acts on it; false once the queue is shut down. A new
 * call's handler runs with poller_busy set so the watcher can tell a handler that takes
 * long (see "Workers"). */
static bool worker_step(struct grpc_front *g, struct vg_buf *flat)
{
    grpc_event ev = grpc_completion_queue_next(g->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN)
        return false;
    if (ev.type != GRPC_OP_COMPLETE)
        return true;
    if (ev.tag == &g->shutdown_tag) {
        pthread_mutex_lock(&g->mu);
        g->shutdown_done = true;
        pthread_cond_broadcast(&g->cond);
        pthread_mutex_unlock(&g->mu);
        return true;
    }
    struct rpc *r = ev.tag;
    if (r->state == RPC_REQUESTED && ev.success) {
        pthread_mutex_lock(&g->gate_mu);
        g->poller_busy = true;
        g->call_seq++;
        if (g->watcher_asleep) { /* first call after a quiet spell: start watching */
            g->watcher_asleep = false;
            pthread_cond_signal(&g->watch_cond);
        }
        pthread_mutex_unlock(&g->gate_mu);
        rpc_arrived(r, flat);
    } else {
        /* A request failed (server shutting down) or a response batch finished, sent or
         * not (client gone, call cancelled): either way the call is over. */
        rpc_done(r);
    }
    return true;
}

/* The poller's loop: events until the queue shuts down or the role is taken over while a
 * handler ran here. Returns false at queue shutdown. */
static bool worker_poll(struct grpc_front *g, uint64_t gen, struct vg_buf *flat)
{
    for (;;) {
        bool more = worker_step(g, flat);
        pthread_mutex_lock(&g->gate_mu);
        if (!more) {
            g->queue_down = true;
            pthread_cond_broadcast(&g->watch_cond);
            pthread_cond_broadcast(&g->follow_cond);
        }
        bool still = g->lead_gen == gen;
        if (still)
            g->poller_busy = false;
        pthread_mutex_unlock(&g->gate_mu);
        if (!more)
            return false;
        if (!still)
            return true;
    }
}

/* Adds ms milliseconds to the CLOCK_REALTIME time t (the condvars' clock). */
static void deadline_in(struct timespec *t, long ms)
{
    clock_gettime(CLOCK_REALTIME, t);
    t->tv_nsec += ms * 1000000L;
    if (t->tv_nsec >= 1000000000L) {
        t->tv_sec += t->tv_nsec / 1000000000L;
        t->tv_nsec %= 1000000000L;
    }
}

/* With gate_mu held: waits as follower until the watcher role is free, then as watcher
 * until the poller has been in one handler for WATCH_MS; then takes the poller role and
 * returns its generation. Returns 0 once the queue is down. */
static uint64_t worker_wait_for_poll(struct grpc_front *g)
{
    while (g->watcher_set && !g->queue_down)
        pthread_cond_wait(&g->follow_cond, &g->gate_mu);
    if (g->queue_down)
        return 0;
    g->watcher_set = true;
    uint64_t seen = g->call_seq;
    bool seen_busy = g->poller_busy;
    for (;;) {
        if (g->watcher_asleep) {
            pthread_cond_wait(&g->watch_cond, &g->gate_mu);
        } else {
            struct timespec t;
            deadline_in(&t, WATCH_MS);
            pthread_cond_timedwait(&g->watch_cond, &g->gate_mu, &t);
        }
        if (g->queue_down)
            return 0;
        if (g->poller_busy && seen_busy && g->call_seq == seen)
            break; /* the same handler ran all through one full watch: take over */
        if (!g->poller_busy && g->call_seq == seen)
            g->watcher_asleep = true; /* quiet: sleep until the next call */
        seen = g->call_seq;
        seen_busy = g->poller_busy;
    }
    g->watcher_set = false;
    g->poller_busy = false;
    pthread_cond_signal(&g->follow_cond); /* a follower becomes the watcher */
    return ++g->lead_gen;
}

static void *front_worker(void *arg)
{
    struct grpc_front *g = arg;
    pthread_mutex_lock(&g->gate_mu);
    uint64_t gen = g->nroles++ == 0 ? g->lead_gen : worker_wait_for_poll(g);
    pthread_mutex_unlock(&g->gate_mu);
    struct vg_buf flat; /* kept across calls: no allocation per multi-slice message */
    vg_buf_init(&flat);
    while (gen && worker_poll(g, gen, &flat)) {
        pthread_mutex_lock(&g->gate_mu);
        gen = worker_wait_for_poll(g);
        pthread_mutex_unlock(&g->gate_mu);
    }
    vg_buf_free(&flat);
    return NULL;
}

/* ---- start / stop ------------------------------------------------------------------- */

/* Frees what start built. A started server must be shut down and its calls drained
 * first (grpc_front_stop); the queue is shut down and drained here (idempotent). */
static void front_free(struct grpc_front *g)
{
    if (g->server)
        grpc_server_destroy(g->server);
    if (g->cq) {
        grpc_completion_queue_shutdown(g->cq);
        while (grpc_completion_queue_next(g->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
                   .type != GRPC_QUEUE_SHUTDOWN) {
        }
        grpc_completion_queue_destroy(g->cq);
    }
    /* Only reachable when a completion never came back; keeps teardown leak-free. */
    while (g->live)
        rpc_free(g->live);
    pthread_cond_destroy(&g->cond);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->watch_cond);
    pthread_cond_destroy(&g->follow_cond);
    pthread_mutex_destroy(&g->gate_mu);
    vg_free(g->threads);
    vg_free(g->registered);
    vg_free(g->unposted);
    vg_free(g);
    grpc_shutdown();
}

/* grpc core's own diagnostics (gpr_log) go through vg_log like every other line. */
static void front_gpr_log(gpr_log_func_args *a)
{
    enum vg_log_level lv = a->severity == GPR_LOG_SEVERITY_ERROR ? VG_LOG_ERROR
                           : a->severity == GPR_LOG_SEVERITY_INFO ? VG_LOG_INFO
                                                                   : VG_LOG_DEBUG;
    char where[256], line[16];
    snprintf(line, sizeof line, "%d", a->line);
    snprintf(where, sizeof where, "%s:%s", a->file ? a->file : "?", line);
    vg_log(lv, "grpc", a->message ? a->message : "", "source", where, NULL);
}

static int front_int_arg(size_t v)
{
    return v > INT_MAX ? INT_MAX : (int)v;
}

struct grpc_front *grpc_front_start(struct vigil *v, const struct grpc_method *const *methods,
                                    size_t nmethods, const struct grpc_server_opts *o,
                                    struct vg_err *err)
{
    if (!o || !o->addr || !o->addr[0]) {
        vg_err_set(err, VG_EINVAL, "grpc: listen address is empty");
        return NULL;
    }
    if (nmethods && !methods) {
        vg_err_set(err, VG_EINVAL, "grpc: %zu methods but no method table", nmethods);
        return NULL;
    }
    struct grpc_front *g = vg_calloc(1, sizeof *g);
    if (!g) {
        vg_err_set(err, VG_ENOMEM, "grpc: out of memory starting the server on %s", o->addr);
        return NULL;
    }
    gpr_set_log_function(front_gpr_log); /* process-wide; the same function every time */
    grpc_init();
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cond, NULL);
    pthread_mutex_init(&g->gate_mu, NULL);
    pthread_cond_init(&g->watch_cond, NULL);
    pthread_cond_init(&g->follow_cond, NULL);
    g->lead_gen = 1;
    g->v = v;
    g->methods = methods;
    g->nmethods = nmethods;
    g->nthreads = o->threads ? o->threads : 1;
    if (v && v->metrics) {
        static const char *const mc[] = {"method", "code"};
        static const char *const m[] = {"method"};
        g->requests = metrics_family(v->metrics, "vigil_grpc_requests_total",
                                     "gRPC calls answered, by method and status code.",
                                     METRIC_COUNTER, mc, 2, NULL, 0);
        g->duration = metrics_family(v->metrics, "vigil_grpc_request_duration_seconds",
                                     "Time from a gRPC call's arrival to its response, by method.",
                                     METRIC_HISTOGRAM, m, 1, NULL, 0);
    }
    g->registered = vg_calloc(nmethods ? nmethods : 1, sizeof *g->registered);
    g->unposted = vg_calloc(nmethods + 1, sizeof *g->unposted);
    g->threads = vg_calloc(g->nthreads, sizeof *g->threads);
    if (!g->registered || !g->unposted || !g->threads) {
        vg_err_set(err, VG_ENOMEM, "grpc: out of memory starting the server on %s", o->addr);
        front_free(g);
        return NULL;
    }

    grpc_arg args[3];
    memset(args, 0, sizeof args);
    size_t nargs = 0;
    if (o->max_msg_bytes) { /* 0 keeps core's default (4 MiB) */
        args[nargs].type = GRPC_ARG_INTEGER;
        args[nargs].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
        args[nargs++].value.integer = front_int_arg(o->max_msg_bytes);
    }
    /* Accept identity, deflate and gzip requests: bit i is grpc_compression_algorithm i. */
    args[nargs].type = GRPC_ARG_INTEGER;
    args[nargs].key = GRPC_COMPRESSION_CHANNEL_ENABLED_ALGORITHMS_BITSET;
    args[nargs++].value.integer =
        (1 << GRPC_COMPRESS_NONE) | (1 << GRPC_COMPRESS_DEFLATE) | (1 << GRPC_COMPRESS_GZIP);
    args[nargs].type = GRPC_ARG_INTEGER;
    args[nargs].key = GRPC_ARG_ALLOW_REUSEPORT;
    args[nargs++].value.integer = 0;
    grpc_channel_args cargs = {.num_args = nargs, .args = args};

    g->cq = grpc_completion_queue_create_for_next(NULL);
    g->server = grpc_server_create(&cargs, NULL);
    grpc_server_register_completion_queue(g->server, g->cq, NULL);
    for (size_t i = 0; i < nmethods; i++) {
        if (!methods[i] || !methods[i]->path || !methods[i]->fn) {
            vg_err_set(err, VG_EINVAL, "grpc: method row %zu has no path or handler", i);
            front_free(g);
            return NULL;
        }
        g->registered[i] = grpc_server_register_method(
            g->server, methods[i]->path, NULL, GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
        if (!g->registered[i]) {
            vg_err_set(err, VG_EINVAL, "grpc: cannot register method %s (registered twice?)",
                       methods[i]->path);
            front_free(g);
            return NULL;
        }
    }

    grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
    g->port = grpc_server_add_http2_port(g->server, o->addr, creds);
    grpc_server_credentials_release(creds);
    if (g->port == 0) {
        vg_err_set(err, VG_EIO, "grpc: cannot listen on %s (address in use or invalid)",
                   o->addr);
        front_free(g);
        return NULL;
    }

    grpc_server_start(g->server);
    /* Requests are posted before any worker runs; from here on the server is started and
     * teardown must go through grpc_front_stop. */
    for (size_t i = 0; i <= nmethods; i++) {
        rpc_post(g, i);
        if (g->unposted[i]) { /* no worker runs yet: no lock needed */
            vg_err_set(err, VG_ENOMEM, "grpc: out of memory starting the server on %s",
                       o->addr);
            g->nthreads = 0;
            grpc_front_stop(g);
            return NULL;
        }
    }
    for (unsigned i = 0; i < g->nthreads; i++) {
        int rc = pthread_create(&g->threads[i], NULL, front_worker, g);
        if (rc != 0) {
            g->nthreads = i;
            vg_err_set(err, VG_EINTERNAL, "grpc: cannot start worker thread %u: %s", i,
                       strerror(rc));
            grpc_front_stop(g);
            return NULL;
        }
        char name[16];
        snprintf(name, sizeof name, "grpc-%u", i);
        pthread_setname_np(g->threads[i], name);
    }
    char port[16], threads[16];
    snprintf(port, sizeof port, "%d", g->port);
    snprintf(threads, sizeof threads, "%u", g->nthreads);
    vg_log(VG_LOG_INFO, "grpc", "listening", "addr", o->addr, "port", port, "threads", threads,
           NULL);
    return g;
}

unsigned grpc_front_port(const struct grpc_front *g)
{
    return g ? (unsigned)g->port : 0;
}

/* Waits on cond until the shutdown tag is back and no struct rpc is alive, or until
 * deadline (NULL: no deadline). Called with mu held. Returns true when done. */
static bool front_wait_drained(struct grpc_front *g, const struct timespec *deadline)
{
    while (!(g->shutdown_done && g->nlive == 0)) {
        if (!deadline)
            pthread_cond_wait(&g->cond, &g->mu);
        else if (pthread_cond_timedwait(&g->cond, &g->mu, deadline) == ETIMEDOUT)
            return g->shutdown_done && g->nlive == 0;
    }
    return true;
}

void grpc_front_stop(struct grpc_front *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->mu);
    g->stopping = true;
    pthread_mutex_unlock(&g->mu);
    grpc_server_shutdown_and_notify(g->server, g->cq, &g->shutdown_tag);

    if (g->nthreads == 0) {
        /* No worker ever started (thread creation failed at start): drain here. */
        grpc_server_cancel_all_calls(g->server);
        while (!(g->shutdown_done && g->nlive == 0)) {
            grpc_event ev = grpc_completion_queue_next(
                g->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
            if (ev.tag == &g->shutdown_tag)
                g->shutdown_done = true;
            else if (ev.type == GRPC_OP_COMPLETE)
                rpc_free(ev.tag);
        }
    } else {
        /* The condvar uses CLOCK_REALTIME (the default attribute). */
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += STOP_GRACE_MS / 1000;
        deadline.tv_nsec += (long)(STOP_GRACE_MS % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
        char n[24];
        pthread_mutex_lock(&g->mu);
        bool drained = front_wait_drained(g, &deadline);
        snprintf(n, sizeof n, "%zu", g->nlive);
        pthread_mutex_unlock(&g->mu);
        if (!drained) {
            /* Open calls may be ours (a handler or a response still running) or still
             * inside core (a client that has not sent its whole request). */
            vg_log(VG_LOG_WARN, "grpc", "grace period over, cancelling open calls",
                   "front_calls_open", n, NULL);
            grpc_server_cancel_all_calls(g->server);
            pthread_mutex_lock(&g->mu);
            front_wait_drained(g, NULL);
            pthread_mutex_unlock(&g->mu);
        }
        /* No tag of ours is outstanding any more: the queue can shut down, which ends
         * the workers' loops. */
        grpc_completion_queue_shutdown(g->cq);
        for (unsigned i = 0; i < g->nthreads; i++)
            pthread_join(g->threads[i], NULL);
    }
    vg_log(VG_LOG_INFO, "grpc", "stopped", NULL);
    front_free(g);
}
