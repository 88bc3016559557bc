/* callgrind_traces: the OTLP span ingest path before the span store, for profiling.
 *
 *   spangen --spans 20000 --dump /tmp/req.bin
 *   valgrind --tool=callgrind --collect-atstart=no ./callgrind_traces /tmp/req.bin [--iters N]
 *            [--protobuf-c] [--no-derive]
 *
 * Reads the length-prefixed ExportTraceServiceRequest bodies spangen --dump wrote and, for
 * each, does what POST /v1/traces and TraceService/Export do between the front end and
 * spanstore_write: a fresh request arena, otlp_traces_decode (decode, limits, translation
 * to span.h's model under the default config) and trace_derive_observe (span metrics,
 * service graph, error tracking, as the defaults enable them); the span store itself is
 * left out (its own bench is spanstore_bench). --protobuf-c decodes with protobuf-c
 * (pb_check_depth, unpack, otlp_traces_translate) instead of the one-pass reader, the
 * path the receiver takes for what that reader declines. Only those calls are collected under
 * valgrind (CALLGRIND_TOGGLE_COLLECT around them), so callgrind's total over the printed
 * span count is the instructions per span of the path. Without valgrind it prints the
 * wall-clock rate.
 *
 * Output: "RESULT spans=<n> requests=<n> rejected=<n> ns_per_span=<f>". */
#include "../server/config.h"
#include "../server/ingest/otlp_receiver.h"
#include "../server/ingest/otlp_traces.h"
#include "../server/traces/derive.h"
#include "../storage/base/vg_alloc.h"
#include "../storage/base/vg_log.h"
#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 20, n = 0;
    unsigned char *p = malloc(cap);
    size_t r;
    while (p && (r = fread(p + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            unsigned char *q = realloc(p, cap *= 2);
            if (!q)
                free(p);
            p = q;
        }
    }
    (void)fclose(f);
    *len = n;
    return p;
}

static int decode_protobuf_c(const struct config *cfg, const unsigned char *body, size_t len,
                             struct vg_arena *a, struct otlp_traces_result *tr,
                             struct vg_err *err)
{
    ProtobufCMessage *m;
    memset(tr, 0, sizeof *tr);
    int rc = otlp_receiver_decode(
        &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor,
        body, len, false, a, OTLP_TRACES_ARENA_FACTOR, &m, err);
    return rc < 0 ? rc : otlp_traces_translate((const otlp_traces_request *)m, cfg, a, tr, err);
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    int iters = 1;
    bool derive = true, old = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--iters") && i + 1 < argc)
            iters = (int)bench_arg_int("--iters", argv[++i]);
        else if (!strcmp(argv[i], "--protobuf-c"))
            old = true;
        else if (!strcmp(argv[i], "--no-derive"))
            derive = false;
        else
            path = argv[i];
    }
    size_t len;
    unsigned char *all = path ? slurp(path, &len) : NULL;
    if (!all) {
        fprintf(stderr, "usage: callgrind_traces FILE [--iters N] [--protobuf-c] [--no-derive]\n");
        return 2;
    }
    vg_log_set_level(VG_LOG_ERROR);
    struct config *cfg = config_default();
    char dir[] = "/tmp/callgrind_traces.XXXXXX";
    if (!cfg || !mkdtemp(dir))
        return 2;
    static const double bounds[] = { 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256,
                                     0.512, 1.024, 2.048, 4.096, 8.192, 16.384 };
    struct trace_derive_opts o = {
        .span_metrics = cfg->traces_span_metrics_enabled,
        .service_graph = cfg->traces_service_graph_enabled,
        .errors = cfg->traces_errors_enabled,
        .span_bounds = bounds, .span_nbounds = sizeof bounds / sizeof bounds[0],
        .graph_bounds = bounds, .graph_nbounds = sizeof bounds / sizeof bounds[0],
        .graph_wait_ms = cfg->traces_service_graph_wait_ms,
        .graph_max_items = (size_t)cfg->traces_service_graph_max_items,
        .max_series = (size_t)cfg->traces_max_derived_series,
        .max_value_len = (size_t)cfg->limits.max_label_value_length,
        .errors_dir = dir, .errors_max_groups = (size_t)cfg->traces_errors_max_groups,
        .errors_no_sync = true,
    };
    struct vg_err err;
    struct trace_derive *d = derive ? trace_derive_new(&o, NULL, NULL, &err) : NULL;
    if (derive && !d) {
        fprintf(stderr, "callgrind_traces: %s\n", err.msg);
        return 2;
    }
    uint64_t spans = 0, reqs = 0, rejected = 0;
    double t0 = now_s();
    for (int it = 0; it < iters; it++) {
        for (size_t off = 0; off + 4 <= len;) {
            size_t n = (size_t)all[off] | (size_t)all[off + 1] << 8 | (size_t)all[off + 2] << 16 |
                       (size_t)all[off + 3] << 24;
            off += 4;
            if (n > len - off)
                break;
            CALLGRIND_TOGGLE_COLLECT;
            struct vg_arena *a = vg_arena_new((size_t)64 * 1024);
            struct otlp_traces_result tr;
            int rc = old ? decode_protobuf_c(cfg, all + off, n, a, &tr, &err)
                         : otlp_traces_decode(cfg, all + off, n, false, a, &tr, &err);
            if (rc == 0)
                trace_derive_observe(d, tr.spans, tr.n);
            vg_arena_free(a);
            CALLGRIND_TOGGLE_COLLECT;
            if (rc < 0) {
                fprintf(stderr, "callgrind_traces: request %llu: %s\n",
                        (unsigned long long)reqs, err.msg);
                return 1;
            }
            spans += tr.received;
            rejected += tr.rejected;
            reqs++;
            off += n;
        }
    }
    double s = now_s() - t0;
    printf("RESULT spans=%llu requests=%llu rejected=%llu ns_per_span=%.1f\n",
           (unsigned long long)spans, (unsigned long long)reqs, (unsigned long long)rejected,
           spans ? s * 1e9 / (double)spans : 0.0);
    trace_derive_free(d);
    config_free(cfg);
    free(all);
    return bench_rm_tree(dir) != 0;
}
