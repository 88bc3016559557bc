/* spangen: an OTLP span load generator for bench/traces_bench.sh, and the decode-only
 * reference: protobuf-c unpacking the very same request bytes in a loop.
 *
 *   spangen --spans N --transport http|grpc --url URL [--concurrency K]
 *           [--traces-per-request T] [--first-trace F] [--span-s S] [--end-ns NS]
 *           [--preencode] [--max-seconds S]
 *   spangen --spans N --decode [--rounds R]      (no load: decode-only rate)
 *   spangen --print-ids M --spans N [...]         (M trace ids of the data, hex, one a line)
 *   spangen --spans N --dump FILE [...]           (the requests into FILE, for
 *                                                  bench/callgrind_traces: per request a
 *                                                  4-byte little-endian length, then the body)
 *
 * Data (the traces of bench/spanstore_bench.c, here as OTLP): trace n (0-based, offset by
 * --first-trace so that successive runs add new traces) has 10 spans over 4 services:
 * frontend (server root) -> checkout (2 spans) -> cart (5 spans, 3 of them PostgreSQL
 * queries) and payment (2 gRPC spans); OpenTelemetry semantic-convention attributes
 * (http.method, http.route, http.status_code, http.url with ids, net.peer.name,
 * db.system/statement/name, rpc.system/service/grpc.status_code, enduser.id, thread.id)
 * and resource attributes (service.name, service.version, host.name, k8s.pod.name,
 * telemetry.sdk.*); one trace in 50 has an error span with an exception event. Trace ids
 * are a hash of n; trace n starts at end - span + n * span / traces (ns), so the data
 * covers --span-s seconds (default 3600) up to --end-ns (default a minute ago).
 *
 * Requests: request i holds traces [i * T, (i + 1) * T) (T = 10: 100 spans), one
 * ResourceSpans per service, as a collector's batch does. Over HTTP: POST /v1/traces,
 * application/x-protobuf; over gRPC (grpc core's C API, one channel, i.e. one HTTP/2
 * connection, per thread): TraceService/Export. A request counts as acknowledged when the
 * answer is OK with an empty ExportTraceServiceResponse (anything else, partial success
 * included, is a failure). With --preencode every request is built before the timed
 * phase; otherwise each thread builds its next request itself.
 *
 * --decode builds the same requests, then unpacks each with protobuf-c (default
 * allocator) and frees it, R rounds over all of them, on one thread: the rate that bare
 * decoding reaches on one core. Output: bench_load.h's RESULT line (items = spans); for
 * --decode "RESULT decode_spans_per_sec=<f> decode_spans_per_cpu_s=<f> bytes_per_span=<f>
 * ..." (per second of wall time, and per CPU second of the decoding thread). Only loopback
 * targets are used; every run is bounded by --max-seconds. */
#include "../storage/base/vg_alloc.h"
#include "../storage/base/vg_buf.h"
#include "bench_load.h"
#include "otlp_trace_service.pb-c.h"

#include <getopt.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <inttypes.h>
#include <time.h>

#define SPANS_PER_TRACE 10
#define NSERVICES 4
#define MS 1000000LL
#define MAX_TPR 100

typedef Opentelemetry__Proto__Common__V1__KeyValue KV;
typedef Opentelemetry__Proto__Common__V1__AnyValue AV;
typedef Opentelemetry__Proto__Trace__V1__Span Span;

struct gen {
    uint64_t traces, first, tpr; /* traces in all, first trace number, traces per request */
    int64_t t0, dt_num, dt_den;   /* trace n starts at t0 + n * dt_num / dt_den */
    bool pre;
    struct bench_req *table;
    struct vg_buf *tbuf;
};

static void trace_id(uint8_t out[16], uint64_t n)
{
    uint64_t a = bench_mix(n * 2 + 1), b = bench_mix(n * 2 + 2);
    memcpy(out, &a, 8);
    memcpy(out + 8, &b, 8);
}

static const char *const services[NSERVICES] = { "frontend", "checkout", "cart", "payment" };

/* One span's storage: the protobuf structs and the strings they point at. */
struct pspan {
    Span s;
    Opentelemetry__Proto__Trace__V1__Status st;
    KV kv[8];
    KV *kvp[8];
    AV av[8];
    uint8_t tid[16], sid[8], pid[8];
    char url[96], route[48], user[24];
    Opentelemetry__Proto__Trace__V1__Span__Event ev, *evp;
    KV ekv[3];
    KV *ekvp[3];
    AV eav[3];
};

struct preq {
    struct pspan sp[MAX_TPR * SPANS_PER_TRACE];
    Span *byservice[NSERVICES][MAX_TPR * SPANS_PER_TRACE];
    KV rkv[NSERVICES][6];
    KV *rkvp[NSERVICES][6];
    AV rav[NSERVICES][6];
    char pod[NSERVICES][48];
};

static void set_str(KV *kv, AV *av, const char *k, const char *v)
{
    opentelemetry__proto__common__v1__key_value__init(kv);
    opentelemetry__proto__common__v1__any_value__init(av);
    kv->key = bench_unconst(k);
    kv->value = av;
    av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    av->string_value = bench_unconst(v);
}

static void set_int(KV *kv, AV *av, const char *k, int64_t v)
{
    opentelemetry__proto__common__v1__key_value__init(kv);
    opentelemetry__proto__common__v1__any_value__init(av);
    kv->key = bench_unconst(k);
    kv->value = av;
    av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    av->int_value = v;
}

/* The 10 spans of trace n starting at start (ns) into x[0..9]. */
static void gen_trace(struct pspan *x, uint64_t n, int64_t start, int *svc_of)
{
    uint8_t tid[16];
    trace_id(tid, n);
    uint64_t seed = bench_mix(n + 7);
    bool err = n % 50 == 7; /* the error lands on span 3, an HTTP call of cart */
    for (int i = 0; i < SPANS_PER_TRACE; i++) {
        struct pspan *p = &x[i];
        Span *s = &p->s;
        opentelemetry__proto__trace__v1__span__init(s);
        memcpy(p->tid, tid, 16);
        seed = bench_mix(seed);
        uint64_t sid = seed | 1;
        memcpy(p->sid, &sid, 8);
        s->trace_id = (ProtobufCBinaryData){ 16, p->tid };
        s->span_id = (ProtobufCBinaryData){ 8, p->sid };
        if (i > 0) {
            memcpy(p->pid, x[i < 3 ? 0 : 1].sid, 8);
            s->parent_span_id = (ProtobufCBinaryData){ 8, p->pid };
        }
        int svc = i == 0 ? 0 : i < 3 ? 1 : i < 8 ? 2 : 3;
        svc_of[i] = svc;
        const char *service = services[svc];
        s->kind = i == 0 ? OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER
                  : i % 2 ? OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT
                          : OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_INTERNAL;
        int64_t st = start + (int64_t)i * 2 * MS;
        seed = bench_mix(seed);
        int64_t en = i == 0 ? start + 300 * MS : st + (int64_t)(seed % 40 + 1) * MS;
        s->start_time_unix_nano = (uint64_t)st;
        s->end_time_unix_nano = (uint64_t)en;
        opentelemetry__proto__trace__v1__status__init(&p->st);
        if (err && i == 3) {
            p->st.code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
            p->st.message = "connection refused";
        }
        s->status = &p->st;
        size_t na = 0;
        snprintf(p->route, sizeof p->route, "/api/v1/%s/:id", service);
        seed = bench_mix(seed);
        snprintf(p->url, sizeof p->url, "http://%s:8080/api/v1/%s/%llu?q=%llu", service, service,
                 (unsigned long long)(seed % 100000), (unsigned long long)(seed >> 40) % 1000);
        snprintf(p->user, sizeof p->user, "user-%llu", (unsigned long long)(n % 5000));
        if (svc == 2 && i >= 5) {
            s->name = "SELECT cart_items";
            set_str(&p->kv[na], &p->av[na], "db.system", "postgresql"), na++;
            set_str(&p->kv[na], &p->av[na], "db.statement",
                    "SELECT * FROM cart_items WHERE user_id = $1"), na++;
            set_str(&p->kv[na], &p->av[na], "db.name", "carts"), na++;
        } else if (svc == 3) {
            s->name = "payment.Payment/Charge";
            set_str(&p->kv[na], &p->av[na], "rpc.system", "grpc"), na++;
            set_str(&p->kv[na], &p->av[na], "rpc.service", "payment.Payment"), na++;
            set_int(&p->kv[na], &p->av[na], "rpc.grpc.status_code", 0), na++;
        } else {
            s->name = i == 0 ? "GET /api/v1/checkout" : p->route;
            set_str(&p->kv[na], &p->av[na], "http.method", i % 3 ? "GET" : "POST"), na++;
            set_str(&p->kv[na], &p->av[na], "http.route", p->route), na++;
            set_int(&p->kv[na], &p->av[na], "http.status_code", err && i == 3 ? 500 : 200), na++;
            set_str(&p->kv[na], &p->av[na], "http.url", p->url), na++;
            set_str(&p->kv[na], &p->av[na], "net.peer.name", service), na++;
        }
        set_str(&p->kv[na], &p->av[na], "enduser.id", p->user), na++;
        seed = bench_mix(seed);
        set_int(&p->kv[na], &p->av[na], "thread.id", (int64_t)(seed % 64)), na++;
        for (size_t a = 0; a < na; a++)
            p->kvp[a] = &p->kv[a];
        s->attributes = p->kvp;
        s->n_attributes = na;
        if (err && i == 3) {
            opentelemetry__proto__trace__v1__span__event__init(&p->ev);
            p->ev.time_unix_nano = (uint64_t)(st + MS);
            p->ev.name = "exception";
            set_str(&p->ekv[0], &p->eav[0], "exception.type", "Error");
            set_str(&p->ekv[1], &p->eav[1], "exception.message", "connect ECONNREFUSED 10.0.0.7:5432");
            set_str(&p->ekv[2], &p->eav[2], "exception.stacktrace",
                    "Error: connect ECONNREFUSED\n    at TCPConnectWrap.afterConnect (node:net:1555:16)");
            for (int a = 0; a < 3; a++)
                p->ekvp[a] = &p->ekv[a];
            p->ev.attributes = p->ekvp;
            p->ev.n_attributes = 3;
            p->evp = &p->ev;
            s->events = &p->evp;
            s->n_events = 1;
        }
    }
}

static int64_t trace_start(const struct gen *g, uint64_t n)
{
    return g->t0 + (int64_t)((__int128)(n - g->first) * g->dt_num / g->dt_den);
}

/* Request i into b (the encoded ExportTraceServiceRequest); its span count. */
static uint64_t build(const struct gen *g, uint64_t i, struct vg_buf *b)
{
    struct preq *q = vg_malloc(sizeof *q);
    if (!q) {
        fprintf(stderr, "spangen: out of memory\n");
        exit(2);
    }
    uint64_t first = i * g->tpr, nt = g->traces - first < g->tpr ? g->traces - first : g->tpr;
    size_t nsvc[NSERVICES] = { 0 };
    for (uint64_t t = 0; t < nt; t++) {
        int svc_of[SPANS_PER_TRACE];
        uint64_t n = g->first + first + t;
        gen_trace(&q->sp[t * SPANS_PER_TRACE], n, trace_start(g, n), svc_of);
        for (int k = 0; k < SPANS_PER_TRACE; k++)
            q->byservice[svc_of[k]][nsvc[svc_of[k]]++] = &q->sp[t * SPANS_PER_TRACE + k].s;
    }
    Opentelemetry__Proto__Trace__V1__ResourceSpans rs[NSERVICES], *rsp[NSERVICES];
    Opentelemetry__Proto__Trace__V1__ScopeSpans ss[NSERVICES], *ssp[NSERVICES];
    Opentelemetry__Proto__Resource__V1__Resource res[NSERVICES];
    Opentelemetry__Proto__Common__V1__InstrumentationScope scope =
        OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
    scope.name = "@opentelemetry/instrumentation-http";
    scope.version = "0.45.1";
    for (int v = 0; v < NSERVICES; v++) {
        snprintf(q->pod[v], sizeof q->pod[v], "%s-7d9f8b6c5d-%c%cx", services[v],
                 'a' + (int)(i % 3), 'k' + v);
        set_str(&q->rkv[v][0], &q->rav[v][0], "service.name", services[v]);
        set_str(&q->rkv[v][1], &q->rav[v][1], "service.version", "1.4.2");
        set_str(&q->rkv[v][2], &q->rav[v][2], "host.name", "node-3.prod.internal");
        set_str(&q->rkv[v][3], &q->rav[v][3], "k8s.pod.name", q->pod[v]);
        set_str(&q->rkv[v][4], &q->rav[v][4], "telemetry.sdk.language", "nodejs");
        set_str(&q->rkv[v][5], &q->rav[v][5], "telemetry.sdk.version", "1.18.1");
        for (int a = 0; a < 6; a++)
            q->rkvp[v][a] = &q->rkv[v][a];
        opentelemetry__proto__resource__v1__resource__init(&res[v]);
        res[v].attributes = q->rkvp[v];
        res[v].n_attributes = 6;
        opentelemetry__proto__trace__v1__scope_spans__init(&ss[v]);
        ss[v].scope = &scope;
        ss[v].spans = q->byservice[v];
        ss[v].n_spans = nsvc[v];
        ssp[v] = &ss[v];
        opentelemetry__proto__trace__v1__resource_spans__init(&rs[v]);
        rs[v].resource = &res[v];
        rs[v].scope_spans = &ssp[v];
        rs[v].n_scope_spans = 1;
        rsp[v] = &rs[v];
    }
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    req.resource_spans = rsp;
    req.n_resource_spans = NSERVICES;
    size_t len = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(&req);
    vg_buf_reset(b);
    if (!vg_buf_reserve(b, len + 1)) {
        fprintf(stderr, "spangen: out of memory\n");
        exit(2);
    }
    b->len = opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, (uint8_t *)b->p);
    vg_free(q);
    return nt * SPANS_PER_TRACE;
}

static int next_req(void *arg, int k, uint64_t i, struct bench_req *r)
{
    struct gen *g = arg;
    if (g->pre) {
        *r = g->table[i];
        return 0;
    }
    r->items = build(g, i, &g->tbuf[k]);
    r->body = g->tbuf[k].p;
    r->len = g->tbuf[k].len;
    r->bytes = r->len;
    return 0;
}

/* ---- transports ---- */

struct grpc_conn {
    grpc_channel *ch;
    grpc_completion_queue *cq;
    grpc_slice method;
};

static void *grpc_open(void *t, int k)
{
    (void)k;
    const char *target = ((struct bench_http_tr *)t)->url; /* HOST:PORT */
    if (strncmp(target, "127.", 4) != 0 && strncmp(target, "[::1]:", 6) != 0)
        return NULL; /* loopback only */
    struct grpc_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    grpc_arg args[1] = { { .type = GRPC_ARG_INTEGER,
                           .key = bench_unconst(GRPC_ARG_MAX_SEND_MESSAGE_LENGTH),
                           .value.integer = 64 << 20 } };
    grpc_channel_args ca = { 1, args };
    c->ch = grpc_channel_create(target, creds, &ca);
    grpc_channel_credentials_release(creds);
    c->cq = grpc_completion_queue_create_for_next(NULL);
    c->method = grpc_slice_from_static_string(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export");
    return c;
}

static bool grpc_send(void *conn, const struct bench_req *r, char *msg, size_t cap)
{
    struct grpc_conn *c = conn;
    gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
                                         gpr_time_from_seconds(60, GPR_TIMESPAN));
    grpc_call *call = grpc_channel_create_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq,
                                               c->method, NULL, deadline, NULL);
    grpc_slice body = grpc_slice_from_static_buffer(r->body, r->len);
    grpc_byte_buffer *send = grpc_raw_byte_buffer_create(&body, 1), *recv = NULL;
    grpc_metadata_array init_md, trail_md;
    grpc_metadata_array_init(&init_md);
    grpc_metadata_array_init(&trail_md);
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &init_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trail_md;
    ops[5].data.recv_status_on_client.status = &status;
    ops[5].data.recv_status_on_client.status_details = &details;
    bool ok = false;
    if (grpc_call_start_batch(call, ops, 6, c, NULL) != GRPC_CALL_OK) {
        snprintf(msg, cap, "grpc_call_start_batch failed");
    } else {
        grpc_event ev = grpc_completion_queue_next(
            c->cq, gpr_time_add(deadline, gpr_time_from_seconds(5, GPR_TIMESPAN)), NULL);
        size_t rlen = recv ? grpc_byte_buffer_length(recv) : 0;
        if (ev.type != GRPC_OP_COMPLETE || !ev.success)
            snprintf(msg, cap, "gRPC batch did not complete");
        else if (status != GRPC_STATUS_OK) {
            char *d = grpc_slice_to_c_string(details);
            snprintf(msg, cap, "gRPC status %d: %s", (int)status, d);
            gpr_free(d);
        } else if (rlen > 0)
            snprintf(msg, cap, "gRPC OK with a partial success (%zu bytes)", rlen);
        else
            ok = true;
    }
    grpc_byte_buffer_destroy(send);
    if (recv)
        grpc_byte_buffer_destroy(recv);
    grpc_metadata_array_destroy(&init_md);
    grpc_metadata_array_destroy(&trail_md);
    grpc_slice_unref(details);
    grpc_call_unref(call);
    return ok;
}

static void grpc_free(void *conn)
{
    struct grpc_conn *c = conn;
    grpc_channel_destroy(c->ch);
    grpc_completion_queue_shutdown(c->cq);
    while (grpc_completion_queue_next(c->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(c->cq);
    free(c);
}

/* ---- main ---- */

static void usage(void)
{
    fprintf(stderr,
            "usage: spangen --spans N --transport http|grpc --url URL [--concurrency K]\n"
            "               [--traces-per-request T] [--first-trace F] [--span-s S]\n"
            "               [--end-ns NS] [--preencode] [--max-seconds S]\n"
            "       spangen --spans N --decode [--rounds R]\n"
            "       spangen --spans N --print-ids M [--first-trace F]\n"
            "       spangen --spans N --dump FILE\n"
            "See the top of bench/spangen.c.\n");
    exit(2);
}

static void encode_all(struct gen *g, uint64_t nreq)
{
    g->table = calloc(nreq ? nreq : 1, sizeof *g->table);
    if (!g->table) {
        fprintf(stderr, "spangen: out of memory\n");
        exit(2);
    }
    for (uint64_t i = 0; i < nreq; i++) {
        struct vg_buf b;
        vg_buf_init(&b);
        g->table[i].items = build(g, i, &b);
        g->table[i].bytes = b.len;
        g->table[i].body = vg_buf_steal(&b, &g->table[i].len);
    }
}

static void free_all(struct gen *g, uint64_t nreq)
{
    for (uint64_t i = 0; g->table && i < nreq; i++)
        vg_free(bench_unconst(g->table[i].body));
    free(g->table);
}

/* CPU seconds of the calling thread: the decode rate per CPU second is the one to set
 * against the server's spans per CPU second (wall time counts other processes' use of
 * the core too). */
static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Writes every request to path (length-prefixed, see the top). 0, or 1 on failure. */
static int dump_all(const struct gen *g, uint64_t nreq, const char *path)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "spangen: cannot create %s\n", path);
        return 1;
    }
    for (uint64_t i = 0; i < nreq; i++) {
        uint32_t n = (uint32_t)g->table[i].len;
        uint8_t le[4] = { (uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24) };
        if (fwrite(le, 1, 4, f) != 4 || fwrite(g->table[i].body, 1, n, f) != n) {
            (void)fclose(f);
            fprintf(stderr, "spangen: cannot write %s\n", path);
            return 1;
        }
    }
    return fclose(f) == 0 ? 0 : 1;
}

/* Unpacks every request `rounds` times; prints the rate. */
static int decode_only(struct gen *g, uint64_t nreq, int rounds)
{
    uint64_t spans = 0, bytes = 0;
    for (uint64_t i = 0; i < nreq; i++)
        bytes += g->table[i].len;
    double t0 = bench_now_s(), c0 = thread_cpu_s();
    for (int r = 0; r < rounds; r++) {
        for (uint64_t i = 0; i < nreq; i++) {
            Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *m =
                opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
                    NULL, g->table[i].len, g->table[i].body);
            if (!m) {
                fprintf(stderr, "spangen: request %" PRIu64 " does not unpack\n", i);
                return 1;
            }
            for (size_t a = 0; a < m->n_resource_spans; a++)
                for (size_t b = 0; b < m->resource_spans[a]->n_scope_spans; b++)
                    spans += m->resource_spans[a]->scope_spans[b]->n_spans;
            opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(m, NULL);
        }
    }
    double s = bench_now_s() - t0, cpu = thread_cpu_s() - c0;
    printf("decoded %" PRIu64 " spans (%d rounds over %" PRIu64 " requests, %.1f bytes/span) in "
           "%.2f s (%.2f CPU s): %.0f spans/s on one thread, %.0f per CPU second\n",
           spans, rounds, nreq, (double)bytes * rounds / (double)spans, s, cpu,
           (double)spans / s, (double)spans / cpu);
    printf("RESULT decode_spans_per_sec=%.1f decode_spans_per_cpu_s=%.1f bytes_per_span=%.1f "
           "spans=%" PRIu64 " elapsed_s=%.3f cpu_s=%.3f\n",
           (double)spans / s, (double)spans / cpu, (double)bytes * rounds / (double)spans, spans,
           s, cpu);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "spans", required_argument, NULL, 'n' },      { "transport", required_argument, NULL, 't' },
        { "url", required_argument, NULL, 'u' },        { "concurrency", required_argument, NULL, 'c' },
        { "traces-per-request", required_argument, NULL, 'T' },
        { "first-trace", required_argument, NULL, 'F' }, { "span-s", required_argument, NULL, 'S' },
        { "end-ns", required_argument, NULL, 'e' },     { "preencode", no_argument, NULL, 'p' },
        { "max-seconds", required_argument, NULL, 'x' }, { "decode", no_argument, NULL, 'd' },
        { "rounds", required_argument, NULL, 'r' },     { "print-ids", required_argument, NULL, 'i' },
        { "dump", required_argument, NULL, 'D' },
        { "help", no_argument, NULL, 'h' },             { 0, 0, 0, 0 }
    };
    struct gen g = { .tpr = 10 };
    struct bench_http_tr tr = { .url = "",
                               .headers = "Content-Type: application/x-protobuf\r\n",
                               .want_empty_body = true };
    const char *transport = NULL, *dump = NULL;
    double span_s = 3600, max_s = 3600;
    long long spans = 0, print_ids = 0;
    int conc = 4, rounds = 3;
    bool decode = false;
    int64_t end_ns = 0;
    int o;
    while ((o = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (o) {
        case 'n': spans = bench_arg_int("--spans", optarg); break;
        case 't': transport = optarg; break;
        case 'u': snprintf(tr.url, sizeof tr.url, "%s", optarg); break;
        case 'c': conc = (int)bench_arg_int("--concurrency", optarg); break;
        case 'T': g.tpr = (uint64_t)bench_arg_int("--traces-per-request", optarg); break;
        case 'F': g.first = (uint64_t)bench_arg_int("--first-trace", optarg); break;
        case 'S': span_s = bench_arg_double("--span-s", optarg); break;
        case 'e': end_ns = bench_arg_int("--end-ns", optarg); break;
        case 'p': g.pre = true; break;
        case 'x': max_s = bench_arg_double("--max-seconds", optarg); break;
        case 'd': decode = true; break;
        case 'r': rounds = (int)bench_arg_int("--rounds", optarg); break;
        case 'i': print_ids = bench_arg_int("--print-ids", optarg); break;
        case 'D': dump = optarg; break;
        default: usage();
        }
    }
    g.traces = (uint64_t)(spans / SPANS_PER_TRACE);
    if (g.traces < 1 || g.tpr < 1 || g.tpr > MAX_TPR || conc < 1 || conc > 256 || rounds < 1 ||
        span_s <= 0 || print_ids < 0)
        usage();
    if (print_ids) {
        for (long long m = 0; m < print_ids; m++) {
            uint8_t id[16];
            trace_id(id, g.first + bench_mix((uint64_t)m + 12345) % g.traces);
            for (int b = 0; b < 16; b++)
                printf("%02x", id[b]);
            printf("\n");
        }
        return 0;
    }
    if (!end_ns)
        end_ns = ((int64_t)time(NULL) - 60) * 1000000000LL;
    g.dt_num = (int64_t)(span_s * 1e9);
    g.dt_den = (int64_t)g.traces;
    g.t0 = end_ns - g.dt_num;
    uint64_t nreq = (g.traces + g.tpr - 1) / g.tpr;
    if (decode || dump) {
        encode_all(&g, nreq);
        int rc = dump ? dump_all(&g, nreq, dump) : decode_only(&g, nreq, rounds);
        free_all(&g, nreq);
        return rc;
    }
    if (!transport || !tr.url[0] || (strcmp(transport, "http") != 0 && strcmp(transport, "grpc") != 0))
        usage();
    bool grpc = !strcmp(transport, "grpc");
    if (grpc)
        grpc_init();
    g.tbuf = calloc((size_t)conc, sizeof *g.tbuf);
    if (!g.tbuf)
        return 2;
    if (g.pre)
        encode_all(&g, nreq);
    struct bench_load l = { .threads = conc, .requests = nreq, .max_seconds = max_s, .gen = &g,
                            .next = next_req, .tr = &tr,
                            .open = grpc ? grpc_open : bench_http_open,
                            .send = grpc ? grpc_send : bench_http_send,
                            .close = grpc ? grpc_free : bench_http_free };
    if (bench_load_run(&l) < 0) {
        fprintf(stderr, "spangen: could not start the threads\n");
        return 2;
    }
    bench_load_report(&l);
    free(l.lat_ms);
    for (int k = 0; k < conc; k++)
        vg_buf_free(&g.tbuf[k]);
    free(g.tbuf);
    free_all(&g, nreq);
    if (grpc)
        grpc_shutdown();
    return l.failed ? 1 : 0;
}
