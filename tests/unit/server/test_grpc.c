/* Tests server/grpc.c: a real front on 127.0.0.1:0 driven by a grpc core client written
 * here (insecure channel, one unary batch per call). Covers echo, handler errors mapped
 * to statuses with their message, unknown methods, gzip/deflate requests, the receive
 * limit, bind and registration failures, allocation failure, and stopping with calls in
 * flight (a slow handler, and a client that never sends its message), the calls
 * counted in /metrics when the front has a metrics registry, and the worker gate: a
 * handler that blocks until another call has run, and slow handlers side by side. */
#include "../../../server/grpc.h"
#include "../../../server/metrics.h"
#include "../../../server/vigil.h"
#include "../../../storage/base/vg_alloc.h"

#include <criterion/criterion.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/compression.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/status.h>

#include <dirent.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- server side: the test method table ---------------------------------------------- */

static int echo(struct vigil *v, const unsigned char *req, size_t len, struct vg_buf *resp,
                struct vg_err *err)
{
    (void)v;
    vg_buf_append(resp, req, len);
    return vg_buf_failed(resp) ? vg_err_set(err, VG_ENOMEM, "echo: out of memory") : 0;
}

static int too_many(struct vigil *v, const unsigned char *req, size_t len,
                    struct vg_buf *resp, struct vg_err *err)
{
    (void)v, (void)req, (void)len;
    vg_buf_puts(resp, "must not be sent");
    return vg_err_set(err, VG_ETOOLARGE, "too many series: 10 > 5 (limits.max_series)");
}

static int disk_failed(struct vigil *v, const unsigned char *req, size_t len,
                       struct vg_buf *resp, struct vg_err *err)
{
    (void)v, (void)req, (void)len, (void)resp;
    return vg_err_set(err, VG_EIO, "leveldb: write failed: No space left on device");
}

static atomic_int slow_entered;

static int slow_echo(struct vigil *v, const unsigned char *req, size_t len,
                     struct vg_buf *resp, struct vg_err *err)
{
    atomic_store(&slow_entered, 1);
    usleep(300 * 1000);
    return echo(v, req, len, resp, err);
}

static atomic_int wait_entered, released;

/* Returns only once a Release call has run (or after 5 s, with an error): with one worker
 * polling at a time, that call is only taken if another worker takes over polling. */
static int wait_for_release(struct vigil *v, const unsigned char *req, size_t len,
                            struct vg_buf *resp, struct vg_err *err)
{
    atomic_store(&wait_entered, 1);
    for (int i = 0; i < 5000 && !atomic_load(&released); i++)
        usleep(1000);
    if (!atomic_load(&released))
        return vg_err_set(err, VG_EINTERNAL, "wait: never released");
    return echo(v, req, len, resp, err);
}

static int release(struct vigil *v, const unsigned char *req, size_t len, struct vg_buf *resp,
                   struct vg_err *err)
{
    atomic_store(&released, 1);
    return echo(v, req, len, resp, err);
}

static const struct grpc_method m_echo = {"/test.Svc/Echo", echo};
static const struct grpc_method m_fail = {"/test.Svc/Fail", too_many};
static const struct grpc_method m_disk = {"/test.Svc/Disk", disk_failed};
static const struct grpc_method m_slow = {"/test.Svc/Slow", slow_echo};
static const struct grpc_method m_wait = {"/test.Svc/Wait", wait_for_release};
static const struct grpc_method m_release = {"/test.Svc/Release", release};
static const struct grpc_method *const methods[] = {&m_echo, &m_fail,    &m_disk,
                                                    &m_slow, &m_wait, &m_release};
#define NMETHODS (sizeof methods / sizeof methods[0])

static size_t live_before; /* vg heap bytes before the front started */

static struct grpc_front *start(size_t max_msg, unsigned threads)
{
    live_before = vg_alloc_live_bytes();
    struct grpc_server_opts o = {.addr = "127.0.0.1:0", .threads = threads,
                                 .max_msg_bytes = max_msg};
    struct vg_err err = {0};
    struct grpc_front *g = grpc_front_start(NULL, methods, NMETHODS, &o, &err);
    cr_assert_not_null(g, "start failed: %s", err.msg);
    cr_assert_gt(grpc_front_port(g), 0);
    return g;
}

/* Stops g and checks every per-call struct and table went back to the vg heap. */
static void stop(struct grpc_front *g)
{
    grpc_front_stop(g);
    cr_assert_eq(vg_alloc_live_bytes(), live_before, "front leaked %zu bytes",
                 vg_alloc_live_bytes() - live_before);
}

/* ---- client side ---------------------------------------------------------------------- */

struct client_call {
    grpc_channel *ch;
    grpc_completion_queue *cq;
    grpc_call *call;
    grpc_metadata_array initial, trailing;
    grpc_byte_buffer *req, *resp;
    grpc_status_code status;
    grpc_slice details;
};

struct reply {
    int status;
    char details[512];
    bool has_body;
    size_t len;
    unsigned char body[1 << 17];
};

static void setup(void)
{
    grpc_init();
}

static void teardown(void)
{
    grpc_shutdown();
}

static gpr_timespec in_ms(int ms)
{
    return gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

/* Opens a channel (algo >= 0: its default request compression) and starts a call on it.
 * With send_msg false the client sends only its initial metadata and then waits. */
static void call_start(struct client_call *c, unsigned port, const char *method,
                       const void *req, size_t len, int algo, bool send_msg)
{
    memset(c, 0, sizeof *c);
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%u", port);
    grpc_arg arg = {.type = GRPC_ARG_INTEGER,
                    .key = GRPC_COMPRESSION_CHANNEL_DEFAULT_ALGORITHM,
                    .value.integer = algo};
    grpc_channel_args args = {.num_args = algo >= 0 ? 1 : 0, .args = &arg};
    grpc_channel_credentials *cr = grpc_insecure_credentials_create();
    c->ch = grpc_channel_create(target, cr, &args);
    grpc_channel_credentials_release(cr);
    c->cq = grpc_completion_queue_create_for_next(NULL);
    c->call = grpc_channel_create_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq,
                                       grpc_slice_from_static_string(method), NULL,
                                       in_ms(20000), NULL);
    cr_assert_not_null(c->call);
    grpc_metadata_array_init(&c->initial);
    grpc_metadata_array_init(&c->trailing);
    grpc_slice s = grpc_slice_from_copied_buffer(req, len);
    c->req = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);

    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (send_msg) {
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = c->req;
        ops[n++].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    }
    ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[n++].data.recv_initial_metadata.recv_initial_metadata = &c->initial;
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n++].data.recv_message.recv_message = &c->resp;
    ops[n].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[n].data.recv_status_on_client.trailing_metadata = &c->trailing;
    ops[n].data.recv_status_on_client.status = &c->status;
    ops[n++].data.recv_status_on_client.status_details = &c->details;
    cr_assert_eq(grpc_call_start_batch(c->call, ops, n, c, NULL), GRPC_CALL_OK);
}

/* Waits for the call's batch, copies the outcome into out and frees the client. */
static void call_finish(struct client_call *c, struct reply *out)
{
    grpc_event ev = grpc_completion_queue_next(c->cq, in_ms(30000), NULL);
    cr_assert_eq(ev.type, GRPC_OP_COMPLETE, "client call timed out");
    cr_assert_eq(ev.tag, c);
    out->status = c->status;
    snprintf(out->details, sizeof out->details, "%.*s", (int)GRPC_SLICE_LENGTH(c->details),
             (const char *)GRPC_SLICE_START_PTR(c->details));
    out->has_body = c->resp != NULL;
    out->len = 0;
    if (c->resp) {
        grpc_byte_buffer_reader rd;
        cr_assert(grpc_byte_buffer_reader_init(&rd, c->resp));
        grpc_slice all = grpc_byte_buffer_reader_readall(&rd);
        cr_assert_leq(GRPC_SLICE_LENGTH(all), sizeof out->body);
        out->len = GRPC_SLICE_LENGTH(all);
        memcpy(out->body, GRPC_SLICE_START_PTR(all), out->len);
        grpc_slice_unref(all);
        grpc_byte_buffer_reader_destroy(&rd);
        grpc_byte_buffer_destroy(c->resp);
    }
    grpc_byte_buffer_destroy(c->req);
    grpc_slice_unref(c->details);
    grpc_metadata_array_destroy(&c->initial);
    grpc_metadata_array_destroy(&c->trailing);
    grpc_call_unref(c->call);
    grpc_channel_destroy(c->ch);
    grpc_completion_queue_shutdown(c->cq);
    while (grpc_completion_queue_next(c->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(c->cq);
}

static struct reply *call(unsigned port, const char *method, const void *req, size_t len,
                          int algo)
{
    static struct reply r; /* large; criterion runs each test in its own process */
    struct client_call c;
    call_start(&c, port, method, req, len, algo, true);
    call_finish(&c, &r);
    return &r;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

TestSuite(grpc, .init = setup, .fini = teardown, .timeout = 60);

/* ---- status mapping ------------------------------------------------------------------- */

Test(grpc, status_mapping)
{
    cr_assert_eq(grpc_status_for(VG_OK), 0);
    cr_assert_eq(grpc_status_for(VG_EINVAL), 3);
    cr_assert_eq(grpc_status_for(VG_ECONFLICT), 3);
    cr_assert_eq(grpc_status_for(VG_EMEDIA), 3);
    cr_assert_eq(grpc_status_for(VG_ETOOLARGE), 8);
    cr_assert_eq(grpc_status_for(VG_ENOMEM), 8);
    cr_assert_eq(grpc_status_for(VG_EOVERLOAD), 14);
    cr_assert_eq(grpc_status_for(VG_EIO), 14, "storage failures are retryable");
    cr_assert_eq(grpc_status_for(VG_ENOTFOUND), 5);
    cr_assert_eq(grpc_status_for(VG_EMETHOD), 12);
    cr_assert_eq(grpc_status_for(VG_EINTERNAL), 13);
    cr_assert_eq(grpc_status_for(-999), 13);
}

/* ---- calls ---------------------------------------------------------------------------- */

Test(grpc, echo_returns_the_handler_bytes)
{
    struct grpc_front *g = start(1 << 20, 2);
    static const unsigned char req[] = {0x0a, 0x03, 'a', 0x00, 'c', 0xff};
    struct reply *r = call(grpc_front_port(g), "/test.Svc/Echo", req, sizeof req, -1);
    cr_assert_eq(r->status, GRPC_STATUS_OK, "status %d: %s", r->status, r->details);
    cr_assert(r->has_body);
    cr_assert_eq(r->len, sizeof req);
    cr_assert_arr_eq(r->body, req, sizeof req);

    /* An empty message is a valid (all-defaults) protobuf and gets an empty reply. */
    r = call(grpc_front_port(g), "/test.Svc/Echo", "", 0, -1);
    cr_assert_eq(r->status, GRPC_STATUS_OK);
    cr_assert(r->has_body);
    cr_assert_eq(r->len, 0);
    stop(g);
}

Test(grpc, many_calls_over_several_threads)
{
    struct grpc_front *g = start(1 << 20, 3);
    struct client_call c[12];
    char msg[12][24];
    for (int i = 0; i < 12; i++) {
        snprintf(msg[i], sizeof msg[i], "call %d", i);
        call_start(&c[i], grpc_front_port(g), "/test.Svc/Echo", msg[i], strlen(msg[i]), -1,
                   true);
    }
    for (int i = 0; i < 12; i++) {
        struct reply *r = call(grpc_front_port(g), "/test.Svc/Echo", "x", 1, -1);
        cr_assert_eq(r->status, GRPC_STATUS_OK);
        call_finish(&c[i], r);
        cr_assert_eq(r->status, GRPC_STATUS_OK);
        cr_assert_eq(r->len, strlen(msg[i]));
        cr_assert_arr_eq(r->body, msg[i], r->len);
    }
    stop(g);
}

/* One worker polls at a time; a handler that blocks must not keep the other calls
 * waiting: another worker takes over polling after the watch interval. */
Test(grpc, a_blocked_handler_does_not_hold_up_other_calls)
{
    struct grpc_front *g = start(1 << 20, 2);
    struct client_call c;
    atomic_store(&wait_entered, 0);
    atomic_store(&released, 0);
    call_start(&c, grpc_front_port(g), "/test.Svc/Wait", "w", 1, -1, true);
    for (int i = 0; i < 5000 && !atomic_load(&wait_entered); i++)
        usleep(1000);
    cr_assert(atomic_load(&wait_entered), "the waiting handler never ran");
    struct reply *r = call(grpc_front_port(g), "/test.Svc/Release", "r", 1, -1);
    cr_assert_eq(r->status, GRPC_STATUS_OK, "status %d: %s", r->status, r->details);
    call_finish(&c, r);
    cr_assert_eq(r->status, GRPC_STATUS_OK, "status %d: %s", r->status, r->details);
    cr_assert_eq(r->len, 1);
    cr_assert_eq(r->body[0], 'w');
    stop(g);
}

/* Two 300 ms handlers on a front with three workers run side by side. */
Test(grpc, slow_handlers_run_side_by_side)
{
    struct grpc_front *g = start(1 << 20, 3);
    struct client_call c[2];
    double t0 = now_s();
    for (int i = 0; i < 2; i++)
        call_start(&c[i], grpc_front_port(g), "/test.Svc/Slow", "s", 1, -1, true);
    static struct reply r;
    for (int i = 0; i < 2; i++) {
        call_finish(&c[i], &r);
        cr_assert_eq(r.status, GRPC_STATUS_OK, "status %d: %s", r.status, r.details);
    }
    cr_assert_lt(now_s() - t0, 0.55, "the two handlers ran one after the other");
    stop(g);
}

Test(grpc, handler_error_becomes_status_with_message)
{
    struct grpc_front *g = start(1 << 20, 1);
    struct reply *r = call(grpc_front_port(g), "/test.Svc/Fail", "x", 1, -1);
    cr_assert_eq(r->status, GRPC_STATUS_RESOURCE_EXHAUSTED);
    cr_assert_str_eq(r->details, "too many series: 10 > 5 (limits.max_series)");
    cr_assert_not(r->has_body, "no response message on error");

    r = call(grpc_front_port(g), "/test.Svc/Disk", "x", 1, -1);
    cr_assert_eq(r->status, GRPC_STATUS_UNAVAILABLE);
    cr_assert_str_eq(r->details, "leveldb: write failed: No space left on device");
    stop(g);
}

Test(grpc, unknown_method_is_unimplemented)
{
    struct grpc_front *g = start(1 << 20, 1);
    for (int i = 0; i < 3; i++) { /* the unregistered request is re-posted each time */
        struct reply *r = call(grpc_front_port(g), "/test.Svc/Nope", "x", 1, -1);
        cr_assert_eq(r->status, GRPC_STATUS_UNIMPLEMENTED);
        cr_assert_str_eq(r->details, "unknown method /test.Svc/Nope");
    }
    /* Registered methods still work after it. */
    struct reply *r = call(grpc_front_port(g), "/test.Svc/Echo", "ok", 2, -1);
    cr_assert_eq(r->status, GRPC_STATUS_OK);
    stop(g);
}

/* ---- metrics -------------------------------------------------------------------------- */

Test(grpc, calls_are_counted_by_method_and_status_name)
{
    struct vigil v = {.metrics = metrics_new()};
    cr_assert_not_null(v.metrics);
    struct grpc_server_opts o = {.addr = "127.0.0.1:0", .threads = 2};
    struct vg_err err = {0};
    struct grpc_front *g = grpc_front_start(&v, methods, NMETHODS, &o, &err);
    cr_assert_not_null(g, "start failed: %s", err.msg);
    unsigned port = grpc_front_port(g);
    cr_assert_eq(call(port, "/test.Svc/Echo", "a", 1, -1)->status, GRPC_STATUS_OK);
    cr_assert_eq(call(port, "/test.Svc/Echo", "b", 1, -1)->status, GRPC_STATUS_OK);
    cr_assert_eq(call(port, "/test.Svc/Fail", "c", 1, -1)->status,
                 GRPC_STATUS_RESOURCE_EXHAUSTED);
    cr_assert_eq(call(port, "/test.Svc/Nope", "d", 1, -1)->status, GRPC_STATUS_UNIMPLEMENTED);
    cr_assert_eq(call(port, "/other.Svc/Nope", "e", 1, -1)->status,
                 GRPC_STATUS_UNIMPLEMENTED);
    grpc_front_stop(g);

    struct vg_buf out;
    vg_buf_init(&out);
    metrics_render(v.metrics, &out);
    vg_buf_putc(&out, '\0');
    cr_assert_not(vg_buf_failed(&out));
    const char *want[] = {
        "# TYPE vigil_grpc_requests_total counter\n",
        "vigil_grpc_requests_total{method=\"/test.Svc/Echo\",code=\"OK\"} 2\n",
        "vigil_grpc_requests_total{method=\"/test.Svc/Fail\",code=\"RESOURCE_EXHAUSTED\"} 1\n",
        /* unregistered methods share one label value */
        "vigil_grpc_requests_total{method=\"unknown\",code=\"UNIMPLEMENTED\"} 2\n",
        "# TYPE vigil_grpc_request_duration_seconds histogram\n",
        "vigil_grpc_request_duration_seconds_count{method=\"/test.Svc/Echo\"} 2\n",
        "vigil_grpc_request_duration_seconds_count{method=\"/test.Svc/Fail\"} 1\n",
        "vigil_grpc_request_duration_seconds_bucket{method=\"/test.Svc/Echo\",le=\"+Inf\"} 2\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert_not_null(strstr(out.p, want[i]), "missing %s in:\n%s", want[i], out.p);
    cr_assert_null(strstr(out.p, "/test.Svc/Nope"), "unregistered path leaked into a label");
    cr_assert_null(strstr(out.p, "/test.Svc/Disk"), "uncalled method has no child");
    vg_buf_free(&out);
    metrics_free(v.metrics);
}

static void compressed_echo(int algo)
{
    struct grpc_front *g = start(1 << 20, 1);
    static char req[100000];
    for (size_t i = 0; i < sizeof req; i++)
        req[i] = "metric_name{job=\"a\"} "[i % 21];
    struct reply *r = call(grpc_front_port(g), "/test.Svc/Echo", req, sizeof req, algo);
    cr_assert_eq(r->status, GRPC_STATUS_OK, "status %d: %s", r->status, r->details);
    cr_assert_eq(r->len, sizeof req);
    cr_assert_arr_eq(r->body, req, sizeof req);
    stop(g);
}

Test(grpc, gzip_request_is_decompressed)
{
    compressed_echo(GRPC_COMPRESS_GZIP);
}

Test(grpc, deflate_request_is_decompressed)
{
    compressed_echo(GRPC_COMPRESS_DEFLATE);
}

Test(grpc, message_over_the_limit_is_resource_exhausted)
{
    struct grpc_front *g = start(1024, 1);
    static char req[4096];
    memset(req, 'z', sizeof req);
    struct reply *r = call(grpc_front_port(g), "/test.Svc/Echo", req, sizeof req, -1);
    cr_assert_eq(r->status, GRPC_STATUS_RESOURCE_EXHAUSTED, "status %d: %s", r->status,
                 r->details);
    /* Compressed to a few dozen bytes on the wire, the limit still counts the inflated
     * size: a small gzip bomb is refused too. */
    r = call(grpc_front_port(g), "/test.Svc/Echo", req, sizeof req, GRPC_COMPRESS_GZIP);
    cr_assert_eq(r->status, GRPC_STATUS_RESOURCE_EXHAUSTED, "status %d: %s", r->status,
                 r->details);
    r = call(grpc_front_port(g), "/test.Svc/Echo", req, 1000, -1);
    cr_assert_eq(r->status, GRPC_STATUS_OK, "under the limit still works");
    stop(g);
}

Test(grpc, workers_are_named)
{
    struct grpc_front *g = start(1 << 20, 2);
    int named = 0;
    DIR *d = opendir("/proc/self/task");
    cr_assert_not_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[300], comm[32] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        if (fgets(comm, sizeof comm, f) && (!strcmp(comm, "grpc-0\n") || !strcmp(comm, "grpc-1\n")))
            named++;
        fclose(f);
    }
    closedir(d);
    cr_assert_eq(named, 2);
    stop(g);
}

/* ---- start failures ------------------------------------------------------------------- */

Test(grpc, taken_port_fails_with_eio_naming_the_address)
{
    struct grpc_front *g = start(1 << 20, 1);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", grpc_front_port(g));
    struct grpc_server_opts o = {.addr = addr, .threads = 1, .max_msg_bytes = 1024};
    struct vg_err err = {0};
    cr_assert_null(grpc_front_start(NULL, methods, NMETHODS, &o, &err));
    cr_assert_eq(err.code, VG_EIO);
    cr_assert_not_null(strstr(err.msg, addr), "%s", err.msg);
    /* The running one is unaffected. */
    struct reply *r = call(grpc_front_port(g), "/test.Svc/Echo", "x", 1, -1);
    cr_assert_eq(r->status, GRPC_STATUS_OK);
    stop(g);
}

Test(grpc, bad_options_and_tables_are_rejected)
{
    struct vg_err err = {0};
    struct grpc_server_opts o = {.addr = "", .threads = 1};
    cr_assert_null(grpc_front_start(NULL, methods, NMETHODS, &o, &err));
    cr_assert_eq(err.code, VG_EINVAL);

    o.addr = "127.0.0.1:0";
    const struct grpc_method *const twice[] = {&m_echo, &m_echo};
    cr_assert_null(grpc_front_start(NULL, twice, 2, &o, &err));
    cr_assert_eq(err.code, VG_EINVAL);
    cr_assert_not_null(strstr(err.msg, "/test.Svc/Echo"), "%s", err.msg);

    const struct grpc_method nofn = {"/test.Svc/X", NULL};
    const struct grpc_method *const bad[] = {&m_echo, &nofn};
    cr_assert_null(grpc_front_start(NULL, bad, 2, &o, &err));
    cr_assert_eq(err.code, VG_EINVAL);
    cr_assert_not_null(strstr(err.msg, "row 1"), "%s", err.msg);
    grpc_front_stop(NULL);
}

Test(grpc, allocation_failure_at_start)
{
    struct grpc_server_opts o = {.addr = "127.0.0.1:0", .threads = 2, .max_msg_bytes = 1024};
    struct grpc_front *g = NULL;
    unsigned n;
    live_before = vg_alloc_live_bytes();
    for (n = 1; n < 100 && !g; n++) {
        struct vg_err err = {0};
        vg_alloc_fail_after(n);
        g = grpc_front_start(NULL, methods, NMETHODS, &o, &err);
        vg_alloc_fail_after(0);
        if (!g)
            cr_assert_eq(err.code, VG_ENOMEM, "n=%u: %s", n, err.msg);
    }
    cr_assert_not_null(g);
    cr_assert_gt(n, 4, "start allocates front, tables, threads and one request per method");
    struct reply *r = call(grpc_front_port(g), "/test.Svc/Echo", "x", 1, -1);
    cr_assert_eq(r->status, GRPC_STATUS_OK);
    stop(g);
}

Test(grpc, allocation_failure_during_a_call_keeps_the_method_served)
{
    struct grpc_front *g = start(1 << 20, 1);
    /* The re-post and the handler's response both fail: the call gets
     * RESOURCE_EXHAUSTED, and the method's request is restored from the finished call. */
    vg_alloc_fail_after(1);
    struct reply *r = call(grpc_front_port(g), "/test.Svc/Echo", "abc", 3, -1);
    vg_alloc_fail_after(0);
    cr_assert_eq(r->status, GRPC_STATUS_RESOURCE_EXHAUSTED, "status %d: %s", r->status,
                 r->details);
    for (int i = 0; i < 3; i++) {
        r = call(grpc_front_port(g), "/test.Svc/Echo", "abc", 3, -1);
        cr_assert_eq(r->status, GRPC_STATUS_OK, "status %d: %s", r->status, r->details);
        cr_assert_eq(r->len, 3);
    }
    stop(g);
}

/* ---- stopping ------------------------------------------------------------------------- */

Test(grpc, stop_lets_a_call_in_flight_finish)
{
    struct grpc_front *g = start(1 << 20, 2);
    struct client_call c;
    atomic_store(&slow_entered, 0);
    call_start(&c, grpc_front_port(g), "/test.Svc/Slow", "late", 4, -1, true);
    for (int i = 0; i < 5000 && !atomic_load(&slow_entered); i++)
        usleep(1000);
    cr_assert(atomic_load(&slow_entered), "the slow handler never ran");
    stop(g); /* returns only after the handler has answered */
    static struct reply r;
    call_finish(&c, &r);
    cr_assert_eq(r.status, GRPC_STATUS_OK, "status %d: %s", r.status, r.details);
    cr_assert_eq(r.len, 4);
    cr_assert_arr_eq(r.body, "late", 4);
}

Test(grpc, stop_cancels_a_stuck_client_after_the_grace_period)
{
    struct grpc_front *g = start(1 << 20, 1);
    struct client_call c;
    /* Sends headers but never its message: the call can never be handled. */
    call_start(&c, grpc_front_port(g), "/test.Svc/Echo", "x", 1, -1, false);
    usleep(200 * 1000);
    double t0 = now_s();
    stop(g);
    cr_assert_lt(now_s() - t0, 15.0, "stop must not wait for the client");
    static struct reply r;
    call_finish(&c, &r);
    cr_assert_neq(r.status, GRPC_STATUS_OK);
}

Test(grpc, stop_accepts_null_and_an_idle_server)
{
    grpc_front_stop(NULL);
    struct grpc_front *g = start(0, 0); /* 0: core's default limit, one thread */
    double t0 = now_s();
    stop(g);
    cr_assert_lt(now_s() - t0, 2.0, "an idle server stops at once");
}
