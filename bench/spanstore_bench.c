/* spanstore_bench: measures the span store (storage/spanstore) alone, without HTTP or
 * protobuf: write rate in batches of ~100 spans with realistic attributes, trace-by-id
 * latency and search latency once a few million spans are stored, bytes on disk per span
 * and RSS per million stored spans.
 *
 * Data: traces of 10 spans over 4 services (frontend -> checkout -> cart/db, payment
 * via gRPC), OpenTelemetry semantic-convention attributes (http.*, db.*, rpc.*, net.*,
 * user ids, urls with ids), resource attributes (service, host, pod, SDK), 2% of traces
 * with an error span and an exception event; trace starts spread evenly over --hours.
 * The spans of one (service, pod) in a batch share one resource attribute array, as
 * the OTLP decoder hands spans of one ResourceSpans to the store.
 *
 * Usage: spanstore_bench [--spans N] [--hours H] [--dir D] [--nosync] [--threads K]
 *                        [--write-only]
 * --write-only stops after the writes: it waits until LevelDB's background compaction
 * goes idle (the process uses under 2% of a core for 3 s in a row, at most 10 minutes),
 * so the compaction the writes caused is paid, closes the store and reports the
 * process's CPU seconds from open to close, every thread included, as spans per CPU
 * second; under valgrind --tool=callgrind the same run gives a stable instruction count
 * per span.
 * Output: human-readable lines, then "RESULT key=value ..." for scripts. The directory
 * is created fresh (an existing one is refused) and removed at the end unless --keep. */
#include "../storage/base/vg_alloc.h"
#include "../storage/spanstore/spanstore.h"
#include "bench_util.h"

#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SPANS_PER_TRACE 10
#define BATCH_TRACES 10 /* 100 spans a batch */
#define T0 1700000000000000000LL
#define MS 1000000LL

static uint64_t rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void trace_id(uint8_t *out, uint64_t n)
{
    uint64_t s = n * 0x9e3779b97f4a7c15ULL + 1;
    for (int i = 0; i < 16; i += 8) {
        uint64_t r = rng(&s);
        memcpy(out + i, &r, 8);
    }
}

/* Storage for one generated span: its attribute arrays and formatted strings. */
struct gen_span {
    struct span s;
    struct span_attr attrs[8];
    struct span_attr res[6];
    struct span_attr ev_attrs[3];
    struct span_event ev;
    char url[96], route[48], user[24], pod[48], stmt[64];
};

static const char *const services[] = { "frontend", "checkout", "cart", "payment" };

static void gen_trace(struct gen_span *g, uint64_t n, int64_t start)
{
    uint8_t tid[16];
    trace_id(tid, n);
    uint64_t seed = n + 7;
    bool err = n % 50 == 7; /* the error lands on span 3, an HTTP call of cart */
    for (int i = 0; i < SPANS_PER_TRACE; i++) {
        struct gen_span *x = &g[i];
        memset(&x->s, 0, sizeof x->s);
        struct span *s = &x->s;
        memcpy(s->trace_id, tid, 16);
        uint64_t sid = rng(&seed) | 1;
        memcpy(s->span_id, &sid, 8);
        if (i > 0)
            memcpy(s->parent_span_id, g[i < 3 ? 0 : 1].s.span_id, 8);
        int svc = i == 0 ? 0 : i < 3 ? 1 : i < 8 ? 2 : 3;
        const char *service = services[svc];
        s->service = vg_str_c(service);
        s->kind = i == 0 ? SPAN_KIND_SERVER : (i % 2 ? SPAN_KIND_CLIENT : SPAN_KIND_INTERNAL);
        s->start_ns = start + (int64_t)i * 2 * MS;
        s->end_ns = s->start_ns + (int64_t)(rng(&seed) % (i == 0 ? 400 : 40) + 1) * MS;
        if (i == 0)
            s->end_ns = start + 300 * MS;
        s->scope_name = VG_STR("@opentelemetry/instrumentation-http");
        s->scope_version = VG_STR("0.45.1");
        s->status = err && i == 3 ? SPAN_STATUS_ERROR : SPAN_STATUS_UNSET;
        size_t na = 0;
        snprintf(x->route, sizeof x->route, "/api/v1/%s/:id", service);
        snprintf(x->url, sizeof x->url, "http://%s:8080/api/v1/%s/%llu?q=%llu", service,
                 service, (unsigned long long)(rng(&seed) % 100000),
                 (unsigned long long)(rng(&seed) % 1000));
        snprintf(x->user, sizeof x->user, "user-%llu", (unsigned long long)(n % 5000));
        if (svc == 2 && i >= 5) {
            s->name = VG_STR("SELECT cart_items");
            snprintf(x->stmt, sizeof x->stmt, "SELECT * FROM cart_items WHERE user_id = $1");
            x->attrs[na++] = (struct span_attr){ VG_STR("db.system"), SPAN_VAL_STRING,
                                                 .v.s = VG_STR("postgresql") };
            x->attrs[na++] = (struct span_attr){ VG_STR("db.statement"), SPAN_VAL_STRING,
                                                 .v.s = vg_str_c(x->stmt) };
            x->attrs[na++] = (struct span_attr){ VG_STR("db.name"), SPAN_VAL_STRING,
                                                 .v.s = VG_STR("carts") };
        } else if (svc == 3) {
            s->name = VG_STR("payment.Payment/Charge");
            x->attrs[na++] = (struct span_attr){ VG_STR("rpc.system"), SPAN_VAL_STRING,
                                                 .v.s = VG_STR("grpc") };
            x->attrs[na++] = (struct span_attr){ VG_STR("rpc.service"), SPAN_VAL_STRING,
                                                 .v.s = VG_STR("payment.Payment") };
            x->attrs[na++] = (struct span_attr){ VG_STR("rpc.grpc.status_code"), SPAN_VAL_INT,
                                                 .v.i = 0 };
        } else {
            s->name = i == 0 ? VG_STR("GET /api/v1/checkout") : vg_str_c(x->route);
            x->attrs[na++] = (struct span_attr){ VG_STR("http.method"), SPAN_VAL_STRING,
                                                 .v.s = i % 3 ? VG_STR("GET") : VG_STR("POST") };
            x->attrs[na++] = (struct span_attr){ VG_STR("http.route"), SPAN_VAL_STRING,
                                                 .v.s = vg_str_c(x->route) };
            x->attrs[na++] = (struct span_attr){ VG_STR("http.status_code"), SPAN_VAL_INT,
                                                 .v.i = s->status == SPAN_STATUS_ERROR ? 500 : 200 };
            x->attrs[na++] = (struct span_attr){ VG_STR("http.url"), SPAN_VAL_STRING,
                                                 .v.s = vg_str_c(x->url) };
            x->attrs[na++] = (struct span_attr){ VG_STR("net.peer.name"), SPAN_VAL_STRING,
                                                 .v.s = s->service };
        }
        x->attrs[na++] = (struct span_attr){ VG_STR("enduser.id"), SPAN_VAL_STRING,
                                             .v.s = vg_str_c(x->user) };
        x->attrs[na++] = (struct span_attr){ VG_STR("thread.id"), SPAN_VAL_INT,
                                             .v.i = (int64_t)(rng(&seed) % 64) };
        s->attrs = x->attrs;
        s->nattrs = na;
        snprintf(x->pod, sizeof x->pod, "%s-7d9f8b6c5d-%c%c%c", service,
                 'a' + (int)(n % 3), 'k' + svc, 'x');
        x->res[0] = (struct span_attr){ VG_STR("service.name"), SPAN_VAL_STRING, .v.s = s->service };
        x->res[1] = (struct span_attr){ VG_STR("service.version"), SPAN_VAL_STRING,
                                        .v.s = VG_STR("1.4.2") };
        x->res[2] = (struct span_attr){ VG_STR("host.name"), SPAN_VAL_STRING,
                                        .v.s = VG_STR("node-3.prod.internal") };
        x->res[3] = (struct span_attr){ VG_STR("k8s.pod.name"), SPAN_VAL_STRING,
                                        .v.s = vg_str_c(x->pod) };
        x->res[4] = (struct span_attr){ VG_STR("telemetry.sdk.language"), SPAN_VAL_STRING,
                                        .v.s = VG_STR("nodejs") };
        x->res[5] = (struct span_attr){ VG_STR("telemetry.sdk.version"), SPAN_VAL_STRING,
                                        .v.s = VG_STR("1.18.1") };
        s->resource_attrs = x->res;
        s->nresource_attrs = 6;
        if (s->status == SPAN_STATUS_ERROR) {
            s->status_message = VG_STR("connection refused");
            x->ev_attrs[0] = (struct span_attr){ VG_STR("exception.type"), SPAN_VAL_STRING,
                                                 .v.s = VG_STR("Error") };
            x->ev_attrs[1] = (struct span_attr){ VG_STR("exception.message"), SPAN_VAL_STRING,
                                                 .v.s = VG_STR("connect ECONNREFUSED 10.0.0.7:5432") };
            x->ev_attrs[2] = (struct span_attr){ VG_STR("exception.stacktrace"), SPAN_VAL_STRING,
                                                 .v.s = VG_STR("Error: connect ECONNREFUSED\n    at TCPConnectWrap.afterConnect (node:net:1555:16)") };
            x->ev = (struct span_event){ s->start_ns + MS, VG_STR("exception"), x->ev_attrs, 3, 0 };
            s->events = &x->ev;
            s->nevents = 1;
        }
    }
}

struct writer {
    struct spanstore *ss;
    uint64_t first, ntraces; /* this thread's traces */
    int64_t spacing;
    int failed;
    double *lat;      /* per-batch write latency, seconds */
    size_t nlat;
};

static void *write_main(void *p)
{
    struct writer *w = p;
    struct gen_span *g = malloc(sizeof *g * SPANS_PER_TRACE * BATCH_TRACES);
    struct span batch[SPANS_PER_TRACE * BATCH_TRACES];
    for (uint64_t t = 0; t < w->ntraces; t += BATCH_TRACES) {
        size_t n = 0;
        for (uint64_t k = 0; k < BATCH_TRACES && t + k < w->ntraces; k++) {
            uint64_t tr = w->first + t + k;
            gen_trace(&g[n], tr, T0 + (int64_t)tr * w->spacing);
            n += SPANS_PER_TRACE;
        }
        /* Spans of one process share one resource array, as the OTLP decoder hands
         * them over (one per ResourceSpans): the first span of each (service, pod) in
         * the batch lends its array to the others. */
        for (size_t i = 0; i < n; i++) {
            batch[i] = g[i].s;
            for (size_t j = 0; j < i; j++)
                if (batch[j].resource_attrs == g[j].res && g[j].s.service.p == g[i].s.service.p &&
                    strcmp(g[j].pod, g[i].pod) == 0) {
                    batch[i].resource_attrs = g[j].res;
                    break;
                }
        }
        struct spanstore_write_result res;
        struct vg_err err;
        double t0 = bench_now_s();
        if (spanstore_write(w->ss, batch, n, &res, &err) != 0 || res.accepted != n) {
            fprintf(stderr, "write failed: %s %s\n", err.msg, res.first_reject);
            w->failed = 1;
            break;
        }
        w->lat[w->nlat++] = bench_now_s() - t0;
    }
    free(g);
    return NULL;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(double *v, size_t n, double p)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n ? v[(size_t)(p * (double)(n - 1))] : 0;
}

/* Median and p99 of `runs` searches of q, in milliseconds; also the hits and keys. */
static void time_search(struct spanstore *ss, const char *label, struct spanstore_query *q,
                        int runs)
{
    double *lat = malloc(sizeof *lat * (size_t)runs);
    size_t hits = 0;
    uint64_t keys = 0;
    for (int i = 0; i < runs; i++) {
        struct spanstore_search_result r;
        struct vg_err err;
        double t0 = bench_now_s();
        if (spanstore_search(ss, q, &r, &err) != 0) {
            fprintf(stderr, "search %s: %s\n", label, err.msg);
            exit(1);
        }
        lat[i] = (bench_now_s() - t0) * 1e3;
        hits = r.n;
        keys = r.keys_read;
        spanstore_search_free(&r);
    }
    double p50 = pct(lat, (size_t)runs, 0.5), p99 = pct(lat, (size_t)runs, 0.99);
    printf("search %-34s hits=%-3zu keys=%-6llu p50=%.3f ms p99=%.3f ms\n", label, hits,
           (unsigned long long)keys, p50, p99);
    printf("RESULT search=%s p50_ms=%.3f p99_ms=%.3f keys=%llu hits=%zu\n", label, p50, p99,
           (unsigned long long)keys, hits);
    free(lat);
}

int main(int argc, char **argv)
{
    uint64_t nspans = 2000000;
    double hours = 24;
    const char *dir = "/tmp/vg_spanstore_bench";
    bool nosync = false, keep = false, write_only = false;
    int threads = 1;
    static const struct option opts[] = {
        { "spans", required_argument, 0, 'n' }, { "hours", required_argument, 0, 'h' },
        { "dir", required_argument, 0, 'd' },   { "nosync", no_argument, 0, 's' },
        { "threads", required_argument, 0, 't' }, { "keep", no_argument, 0, 'k' },
        { "write-only", no_argument, 0, 'w' },
        { 0, 0, 0, 0 },
    };
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        switch (c) {
        case 'n': nspans = strtoull(optarg, NULL, 10); break;
        case 'h': hours = bench_arg_double("--hours", optarg); break;
        case 'd': dir = optarg; break;
        case 's': nosync = true; break;
        case 't': threads = (int)bench_arg_int("--threads", optarg); break;
        case 'k': keep = true; break;
        case 'w': write_only = true; break;
        default: return 2;
        }
    }
    struct stat st;
    if (stat(dir, &st) == 0) {
        fprintf(stderr, "%s exists; give a fresh --dir\n", dir);
        return 2;
    }
    if (threads < 1 || threads > 64)
        threads = 1;
    uint64_t ntraces = nspans / SPANS_PER_TRACE;
    if (ntraces == 0) {
        fprintf(stderr, "--spans must be at least %d\n", SPANS_PER_TRACE);
        return 2;
    }
    int64_t spacing = (int64_t)(hours * 3600e9 / (double)ntraces);

    struct spanstore_opts o;
    spanstore_opts_default(&o);
    o.dir = dir;
    o.maint_interval_ms = 0;
    o.no_sync = nosync;
    struct vg_err err;
    double cpu0 = cpu_s();
    struct spanstore *ss = spanstore_open(&o, &err);
    if (!ss) {
        fprintf(stderr, "open: %s\n", err.msg);
        return 1;
    }
    long rss0 = bench_status_kb("VmRSS:");

    struct writer w[64];
    pthread_t th[64];
    uint64_t per = (ntraces / (uint64_t)threads + BATCH_TRACES - 1) / BATCH_TRACES * BATCH_TRACES;
    double t0 = bench_now_s();
    for (int i = 0; i < threads; i++) {
        uint64_t first = (uint64_t)i * per;
        uint64_t n = first >= ntraces ? 0 : (ntraces - first < per ? ntraces - first : per);
        w[i] = (struct writer){ ss, first, n, spacing, 0, NULL, 0 };
        w[i].lat = malloc(sizeof(double) * (n / BATCH_TRACES + 1));
        pthread_create(&th[i], NULL, write_main, &w[i]);
    }
    size_t nl = 0;
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    double elapsed = bench_now_s() - t0;
    double *lat = malloc(sizeof(double) * (ntraces / BATCH_TRACES + (size_t)threads + 1));
    for (int i = 0; i < threads; i++) {
        if (w[i].failed)
            exit(1);
        memcpy(lat + nl, w[i].lat, w[i].nlat * sizeof *lat);
        nl += w[i].nlat;
        free(w[i].lat);
    }
    struct spanstore_stats sst;
    spanstore_stats(ss, &sst);
    double rate = (double)sst.spans / elapsed;
    printf("after writing: RSS %ld KiB (anonymous %ld KiB, mapped files %ld KiB), "
           "vg_malloc live %zu KiB\n", bench_status_kb("VmRSS:"), bench_status_kb("RssAnon:"),
           bench_status_kb("RssFile:"), vg_alloc_live_bytes() / 1024);
    printf("wrote %llu spans in %llu traces over %.0f h in %.1f s with %d thread(s), %s: "
           "%.0f spans/s; batch p50 %.2f ms p99 %.2f ms\n",
           (unsigned long long)sst.spans, (unsigned long long)sst.traces, hours, elapsed,
           threads, nosync ? "no sync" : "synced batches", rate, pct(lat, nl, 0.5) * 1e3,
           pct(lat, nl, 0.99) * 1e3);
    printf("RESULT write_spans_per_sec=%.0f batch_p50_ms=%.3f batch_p99_ms=%.3f sync=%d "
           "threads=%d\n", rate, pct(lat, nl, 0.5) * 1e3, pct(lat, nl, 0.99) * 1e3, !nosync,
           threads);
    free(lat);
    if (write_only) {
        double settle0 = bench_now_s(), prev = cpu_s();
        for (int quiet = 0; quiet < 3 && bench_now_s() - settle0 < 600;) {
            usleep(1000000);
            double c = cpu_s();
            quiet = c - prev < 0.02 ? quiet + 1 : 0;
            prev = c;
        }
        printf("compaction settled %.1f s after the writes\n", bench_now_s() - settle0);
        spanstore_close(ss);
        double cpu = cpu_s() - cpu0;
        unsigned long long disk = bench_tree_bytes(dir);
        printf("CPU %.2f s from open to close: %.0f spans per CPU second; disk %.1f bytes "
               "per span\n", cpu, (double)sst.spans / cpu, (double)disk / (double)sst.spans);
        printf("RESULT cpu_s=%.3f spans_per_cpu_s=%.0f disk_bytes_per_span=%.1f\n", cpu,
               (double)sst.spans / cpu, (double)disk / (double)sst.spans);
        return keep || bench_rm_tree(dir) == 0 ? 0 : 1;
    }

    /* Trace by id: random stored traces. */
    int gets = 2000;
    double *gl = malloc(sizeof *gl * (size_t)gets);
    uint64_t seed = 12345;
    size_t spans_seen = 0;
    for (int i = 0; i < gets; i++) {
        uint8_t tid[16];
        trace_id(tid, rng(&seed) % ntraces);
        struct spanstore_trace t;
        double a = bench_now_s();
        if (spanstore_trace_get(ss, tid, &t, &err) != 0) {
            fprintf(stderr, "trace_get: %s\n", err.msg);
            exit(1);
        }
        gl[i] = (bench_now_s() - a) * 1e3;
        spans_seen += t.n;
        spanstore_trace_free(&t);
    }
    double g50 = pct(gl, (size_t)gets, 0.5), g99 = pct(gl, (size_t)gets, 0.99);
    printf("trace by id (%zu spans each): p50 %.3f ms p99 %.3f ms\n",
           spans_seen / (size_t)gets, g50, g99);
    printf("RESULT trace_by_id_p50_ms=%.3f p99_ms=%.3f\n", g50, g99);
    free(gl);

    struct spanstore_query q;
    struct matcher *m500 = matcher_new(MATCH_EQ, VG_STR("http.status_code"), VG_STR("500"), &err);
    struct matcher *mdb = matcher_new(MATCH_EQ, VG_STR("db.system"), VG_STR("postgresql"), &err);
    struct matcher *muser = matcher_new(MATCH_EQ, VG_STR("enduser.id"), VG_STR("user-4242"), &err);
    struct matcher *mre = matcher_new(MATCH_RE, VG_STR("http.url"), VG_STR(".*/cart/4242\\?.*"), &err);
    struct spanstore_attr_filter f500 = { SPANSTORE_SCOPE_SPAN, m500 };
    struct spanstore_attr_filter fdb = { SPANSTORE_SCOPE_ANY, mdb };
    struct spanstore_attr_filter fuser = { SPANSTORE_SCOPE_SPAN, muser };
    struct spanstore_attr_filter fre = { SPANSTORE_SCOPE_SPAN, mre };
    int64_t end = T0 + (int64_t)ntraces * spacing;

    spanstore_query_init(&q);
    time_search(ss, "all,last-20", &q, 200);
    q.service = VG_STR("cart");
    time_search(ss, "service=cart", &q, 200);
    q.span_name = VG_STR("SELECT cart_items");
    time_search(ss, "service=cart,name", &q, 200);
    spanstore_query_init(&q);
    q.status = SPAN_STATUS_ERROR;
    time_search(ss, "status=error", &q, 200);
    spanstore_query_init(&q);
    q.attrs = &f500;
    q.nattrs = 1;
    q.service = VG_STR("cart");
    time_search(ss, "service=cart,http.status_code=500", &q, 200);
    spanstore_query_init(&q);
    q.attrs = &fdb;
    q.nattrs = 1;
    q.min_duration_ns = 39 * MS;
    time_search(ss, "db.system=postgresql,minDur=39ms", &q, 100);
    spanstore_query_init(&q);
    q.min_trace_duration_ns = 1; /* trace-level: every trace, summaries only */
    q.limit = 100;
    time_search(ss, "all,limit=100", &q, 100);
    spanstore_query_init(&q);
    q.status = SPAN_STATUS_ERROR;
    q.from_ns = T0;
    q.to_ns = T0 + (end - T0) / 24; /* the oldest hour of the day */
    time_search(ss, "status=error,oldest-hour", &q, 200);
    spanstore_query_init(&q);
    q.attrs = &fuser;
    q.nattrs = 1;
    q.service = VG_STR("frontend");
    q.limit = 5;
    time_search(ss, "frontend,enduser.id(non-indexed),5", &q, 20);
    spanstore_query_init(&q);
    q.attrs = &fre;
    q.nattrs = 1;
    q.limit = 1;
    q.max_inspect = 20000;
    time_search(ss, "http.url=~regex(scan,20k)", &q, 3);

    spanstore_stats(ss, &sst);
    long rss = bench_status_kb("VmRSS:"), hwm = bench_status_kb("VmHWM:");
    long anon = bench_status_kb("RssAnon:"), file = bench_status_kb("RssFile:");
    spanstore_close(ss);
    unsigned long long disk = bench_tree_bytes(dir);
    printf("disk: %llu bytes (%.1f per span; encoded spans %.1f bytes each before "
           "LevelDB's compression)\n", disk, (double)disk / (double)sst.spans,
           (double)sst.bytes / (double)sst.spans);
    /* LevelDB reads tables through mmap: pages of files the searches touched count in
     * RSS (RssFile) but are page cache the kernel can drop; RssAnon is the heap. */
    double per_m = (double)sst.spans / 1e6;
    printf("RSS: %ld KiB at open, %ld KiB after the queries (anonymous %ld KiB, mapped "
           "table files %ld KiB; peak %ld KiB): %.1f MiB per million spans above the empty "
           "store, %.1f MiB of it heap\n", rss0, rss, anon, file, hwm,
           (double)(rss - rss0) / 1024.0 / per_m, (double)(anon - rss0) / 1024.0 / per_m);
    printf("RESULT disk_bytes_per_span=%.1f encoded_bytes_per_span=%.1f rss_kib=%ld "
           "rss_anon_kib=%ld rss_file_kib=%ld peak_rss_kib=%ld rss_mib_per_million=%.2f "
           "anon_mib_per_million=%.2f\n", (double)disk / (double)sst.spans,
           (double)sst.bytes / (double)sst.spans, rss, anon, file, hwm,
           (double)(rss - rss0) / 1024.0 / per_m, (double)(anon - rss0) / 1024.0 / per_m);
    matcher_free(m500);
    matcher_free(mdb);
    matcher_free(muser);
    matcher_free(mre);
    if (!keep) {
        if (bench_rm_tree(dir) != 0)
            return 1;
    }
    return 0;
}
