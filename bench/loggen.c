/* loggen: a log push load generator for bench/logs_bench.sh, and the writer of the same
 * log text as a plain file (the grep reference).
 *
 *   loggen --mb N [--format loki-json|loki-pb|otlp] [--url URL] [--concurrency K]
 *          [--batch LINES] [--streams S] [--span-s SECONDS] [--end-ns NS] [--preencode]
 *          [--max-seconds S]
 *   loggen --mb N --write-raw FILE [--streams S]      (no load: writes the text only)
 *
 * Data: line i (0-based) is a JSON access-log line as nginx writes it with
 * `log_format ... escape=json` (time, remote_addr, method, path, status, bytes, referer,
 * user_agent, request_time, request_id), from a generator seeded with i alone, so every
 * mode and thread produces the same text. Lines are generated until their bytes
 * (without newlines) reach N MiB; that count is printed as "LINES=<n>". Line i belongs to
 * stream i % S ({instance="web-<s>", job="nginx"}) and carries the time
 * end - span + i * span / lines (ns), so every stream is in time order. Searched for by
 * the benchmark: the path "/api/v1/rare-endpoint" (line i with i % 100003 == 7, about
 * 10 per million lines), the word "Firefox" (one user agent in five), and the
 * request_id of line lines/2, printed as "NEEDLE_ID=<hex>".
 *
 * Requests: thread k (of K, a divisor of S) sends lines k, k + K, k + 2K, ... (so the
 * streams s with s % K == k, each stream by one thread, in time order) over one
 * keep-alive connection, --batch lines a request, grouped by stream:
 *   loki-json  POST /loki/api/v1/push, application/json, Loki's {"streams": [...]}
 *   loki-pb    POST /loki/api/v1/push, application/x-protobuf, snappy-compressed
 *              logproto.PushRequest (proto/loki_push.proto)
 *   otlp       POST /v1/logs, application/x-protobuf, ExportLogsServiceRequest: one
 *              ResourceLogs per stream (service.name=nginx, host.name=web-<s>), the line
 *              as a string body, severity INFO
 * With --preencode every body is built before the timed phase (memory: about the text
 * size again), so the rate measured is the server's; otherwise each thread builds its
 * next body itself. The MB/s figure counts log text (line bytes), not request bytes.
 * Output: bench_load.h's RESULT line. Only loopback URLs are accepted; the run is
 * bounded by --max-seconds. */
#include "../storage/base/vg_alloc.h"
#include "../storage/base/vg_buf.h"
#include "bench_load.h"
#include "loki_push.pb-c.h"
#include "otlp_logs_service.pb-c.h"

#include <getopt.h>
#include <inttypes.h>
#include <snappy-c.h>
#include <time.h>

#define MAX_LINE 1024
#define MAX_STREAMS 64

enum format { FMT_LOKI_JSON, FMT_LOKI_PB, FMT_OTLP };

struct gen {
    enum format fmt;
    uint64_t lines, batch, conc;
    int streams;
    int64_t t0, dt_num, dt_den; /* line i at t0 + i * dt_num / dt_den */
    bool pre;
    struct bench_req *table; /* --preencode: every request */
    struct vg_buf *tbuf;     /* per thread: the body being built */
    char path[256];
    const char *headers;
};

/* ---- the lines ---- */

static const char *const paths[] = { "/", "/index.html", "/api/v1/users", "/api/v1/orders",
                                     "/api/v1/products", "/static/app.js", "/static/site.css",
                                     "/login", "/logout", "/api/v1/cart", "/favicon.ico",
                                     "/healthz" };
static const char *const agents[] = {
    "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/119.0.0.0 Safari/537.36"), /* one agent, split for width */
    "curl/8.4.0", "Go-http-client/1.1", "kube-probe/1.28",
};
static const char *const methods[] = { "GET", "GET", "GET", "POST", "PUT", "DELETE" };
static const int statuses[] = { 200, 200, 200, 200, 200, 201, 204, 301, 304, 400, 404, 500 };

static uint64_t request_id(uint64_t i) { return bench_mix(i ^ 0x5bd1e995u); }

/* Line i at time t (ns) into buf; its length. */
static int make_line(char *buf, size_t cap, uint64_t i, int64_t t)
{
    uint64_t r = bench_mix(i), r2 = bench_mix(r);
    time_t sec = (time_t)(t / 1000000000);
    struct tm tm;
    char ts[32];
    gmtime_r(&sec, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S+00:00", &tm);
    unsigned client = (unsigned)(r >> 8) % 500; /* a pool of clients, as real logs have */
    const char *path = i % 100003 == 7 ? "/api/v1/rare-endpoint" : paths[r % 12];
    int st = statuses[(r >> 36) % 12];
    return snprintf(buf, cap,
                    "{\"time\":\"%s\",\"remote_addr\":\"10.%u.%u.%u\",\"method\":\"%s\","
                    "\"path\":\"%s?id=%u\",\"status\":%d,\"bytes\":%u,\"referer\":\"-\","
                    "\"user_agent\":\"%s\",\"request_time\":0.%03u,"
                    "\"request_id\":\"%016" PRIx64 "\"}",
                    ts, client * 7 & 255, client * 13 & 255, client & 255,
                    methods[(r >> 32) % 6], path, (unsigned)(r >> 40 & 0xffff), st,
                    st == 204 || st == 304 ? 0 : (unsigned)(r % 12 * 1371 + (r2 >> 20) % 400),
                    agents[client % 5], (unsigned)(r2 >> 50) % 1000, request_id(i));
}

static int64_t line_time(const struct gen *g, uint64_t i)
{
    return g->t0 + (int64_t)((__int128)i * g->dt_num / g->dt_den);
}

/* Lines whose bytes reach mb MiB. */
static uint64_t count_lines(double mb)
{
    char buf[MAX_LINE];
    uint64_t want = (uint64_t)(mb * 1048576.0), got = 0, n = 0;
    while (got < want)
        got += (uint64_t)make_line(buf, sizeof buf, n++, 1700000000000000000LL);
    return n;
}

/* ---- request bodies ---- */

/* Each json_request and pb_request returns the log text bytes it encoded. */
static uint64_t json_request(const struct gen *g, const uint64_t *idx, uint64_t n, struct vg_buf *b)
{
    char line[MAX_LINE];
    uint64_t bytes = 0;
    vg_buf_puts(b, "{\"streams\":[");
    for (int s = 0; s < g->streams; s++) {
        vg_buf_printf(b, "%s{\"stream\":{\"job\":\"nginx\",\"instance\":\"web-%d\"},\"values\":[",
                      s ? "," : "", s);
        bool any = false;
        for (uint64_t k = 0; k < n; k++) {
            uint64_t i = idx[k];
            if (i % (uint64_t)g->streams != (uint64_t)s)
                continue;
            int64_t t = line_time(g, i);
            int len = make_line(line, sizeof line, i, t);
            bytes += (uint64_t)len;
            vg_buf_printf(b, "%s[\"%" PRId64 "\",", any ? "," : "", t);
            vg_buf_json_str(b, line, (size_t)len);
            vg_buf_putc(b, ']');
            any = true;
        }
        vg_buf_puts(b, "]}");
    }
    vg_buf_puts(b, "]}");
    return bytes;
}

/* The protobuf messages of one request point into lines, a flat copy of its text. */
static uint64_t pb_request(const struct gen *g, const uint64_t *idx, uint64_t n, struct vg_buf *b)
{
    char *text = vg_malloc(n * MAX_LINE);
    size_t *off = vg_malloc((n + 1) * sizeof *off);
    int64_t *ts = vg_malloc(n * sizeof *ts);
    if (!text || !off || !ts) {
        fprintf(stderr, "loggen: out of memory\n");
        exit(2);
    }
    off[0] = 0;
    for (uint64_t k = 0; k < n; k++) {
        ts[k] = line_time(g, idx[k]);
        off[k + 1] = off[k] + (size_t)make_line(text + off[k], MAX_LINE, idx[k], ts[k]);
    }
    size_t packed = 0;
    uint8_t *out = NULL;
    if (g->fmt == FMT_LOKI_PB) {
        Logproto__StreamAdapter sa[MAX_STREAMS], *sap[MAX_STREAMS];
        Logproto__EntryAdapter *ents = vg_malloc(n * sizeof *ents), **entp = vg_malloc(n * sizeof *entp);
        Logproto__Timestamp *tsm = vg_malloc(n * sizeof *tsm);
        char labels[MAX_STREAMS][48];
        size_t e = 0;
        for (int s = 0; s < g->streams; s++) {
            logproto__stream_adapter__init(&sa[s]);
            sap[s] = &sa[s];
            int ll = snprintf(labels[s], sizeof labels[s], "{instance=\"web-%d\", job=\"nginx\"}", s);
            sa[s].labels = (ProtobufCBinaryData){ (size_t)ll, (uint8_t *)labels[s] };
            sa[s].entries = entp + e;
            for (uint64_t k = 0; k < n; k++) {
                if (idx[k] % (uint64_t)g->streams != (uint64_t)s)
                    continue;
                logproto__entry_adapter__init(&ents[e]);
                logproto__timestamp__init(&tsm[e]);
                tsm[e].seconds = ts[k] / 1000000000;
                tsm[e].nanos = (int32_t)(ts[k] % 1000000000);
                ents[e].timestamp = &tsm[e];
                ents[e].line = (ProtobufCBinaryData){ off[k + 1] - off[k], (uint8_t *)text + off[k] };
                entp[e] = &ents[e];
                e++;
                sa[s].n_entries++;
            }
        }
        Logproto__PushRequest req = LOGPROTO__PUSH_REQUEST__INIT;
        req.streams = sap;
        req.n_streams = (size_t)g->streams;
        size_t plen = logproto__push_request__get_packed_size(&req);
        uint8_t *pb = vg_malloc(plen);
        size_t clen = snappy_max_compressed_length(plen);
        out = vg_malloc(clen);
        if (!pb || !out || !ents || !entp || !tsm) {
            fprintf(stderr, "loggen: out of memory\n");
            exit(2);
        }
        logproto__push_request__pack(&req, pb);
        if (snappy_compress((const char *)pb, plen, (char *)out, &clen) != SNAPPY_OK) {
            fprintf(stderr, "loggen: snappy_compress failed\n");
            exit(2);
        }
        packed = clen;
        vg_free(pb);
        vg_free(ents);
        vg_free(entp);
        vg_free(tsm);
    } else {
        typedef Opentelemetry__Proto__Common__V1__KeyValue KV;
        typedef Opentelemetry__Proto__Common__V1__AnyValue AV;
        Opentelemetry__Proto__Logs__V1__ResourceLogs rl[MAX_STREAMS], *rlp[MAX_STREAMS];
        Opentelemetry__Proto__Resource__V1__Resource res[MAX_STREAMS];
        Opentelemetry__Proto__Logs__V1__ScopeLogs sl[MAX_STREAMS], *slp[MAX_STREAMS];
        Opentelemetry__Proto__Common__V1__InstrumentationScope scope =
            OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
        KV kv[MAX_STREAMS][2], *kvp[MAX_STREAMS][2];
        AV av[MAX_STREAMS][2];
        char host[MAX_STREAMS][16];
        Opentelemetry__Proto__Logs__V1__LogRecord *recs = vg_malloc(n * sizeof *recs),
                                                  **recp = vg_malloc(n * sizeof *recp);
        AV *bodies = vg_malloc(n * sizeof *bodies);
        if (!recs || !recp || !bodies) {
            fprintf(stderr, "loggen: out of memory\n");
            exit(2);
        }
        scope.name = "nginx-access-log";
        size_t e = 0;
        for (int s = 0; s < g->streams; s++) {
            snprintf(host[s], sizeof host[s], "web-%d", s);
            const char *keys[2] = { "service.name", "host.name" }, *vals[2] = { "nginx", host[s] };
            for (int a = 0; a < 2; a++) {
                opentelemetry__proto__common__v1__key_value__init(&kv[s][a]);
                opentelemetry__proto__common__v1__any_value__init(&av[s][a]);
                av[s][a].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
                av[s][a].string_value = bench_unconst(vals[a]);
                kv[s][a].key = bench_unconst(keys[a]);
                kv[s][a].value = &av[s][a];
                kvp[s][a] = &kv[s][a];
            }
            opentelemetry__proto__resource__v1__resource__init(&res[s]);
            res[s].attributes = kvp[s];
            res[s].n_attributes = 2;
            opentelemetry__proto__logs__v1__scope_logs__init(&sl[s]);
            sl[s].scope = &scope;
            sl[s].log_records = recp + e;
            slp[s] = &sl[s];
            opentelemetry__proto__logs__v1__resource_logs__init(&rl[s]);
            rl[s].resource = &res[s];
            rl[s].scope_logs = &slp[s];
            rl[s].n_scope_logs = 1;
            rlp[s] = &rl[s];
            for (uint64_t k = 0; k < n; k++) {
                if (idx[k] % (uint64_t)g->streams != (uint64_t)s)
                    continue;
                /* a string body needs a NUL: the text has room, lines are < MAX_LINE */
                Opentelemetry__Proto__Logs__V1__LogRecord *lr = &recs[e];
                opentelemetry__proto__logs__v1__log_record__init(lr);
                opentelemetry__proto__common__v1__any_value__init(&bodies[e]);
                bodies[e].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
                bodies[e].string_value = vg_malloc(off[k + 1] - off[k] + 1);
                if (!bodies[e].string_value) {
                    fprintf(stderr, "loggen: out of memory\n");
                    exit(2);
                }
                memcpy(bodies[e].string_value, text + off[k], off[k + 1] - off[k]);
                bodies[e].string_value[off[k + 1] - off[k]] = 0;
                lr->time_unix_nano = (uint64_t)ts[k];
                lr->observed_time_unix_nano = (uint64_t)ts[k];
                lr->severity_number = OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_INFO;
                lr->severity_text = "INFO";
                lr->body = &bodies[e];
                recp[e] = lr;
                e++;
                sl[s].n_log_records++;
            }
        }
        Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest req =
            OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_REQUEST__INIT;
        req.resource_logs = rlp;
        req.n_resource_logs = (size_t)g->streams;
        packed = opentelemetry__proto__collector__logs__v1__export_logs_service_request__get_packed_size(&req);
        out = vg_malloc(packed);
        if (!out) {
            fprintf(stderr, "loggen: out of memory\n");
            exit(2);
        }
        opentelemetry__proto__collector__logs__v1__export_logs_service_request__pack(&req, out);
        for (size_t k = 0; k < e; k++)
            vg_free(bodies[k].string_value);
        vg_free(recs);
        vg_free(recp);
        vg_free(bodies);
    }
    vg_buf_append(b, out, packed);
    vg_free(out);
    uint64_t bytes = off[n];
    vg_free(text);
    vg_free(off);
    vg_free(ts);
    return bytes;
}

/* Lines sent by thread k: k, k + K, k + 2K, ... (K = concurrency, a divisor of the
 * stream count), so each stream is sent by one thread only and arrives in time order. */
static uint64_t thread_lines(const struct gen *g, uint64_t k)
{
    return g->lines > k ? (g->lines - k + g->conc - 1) / g->conc : 0;
}

/* Builds request i (thread i % K, its (i / K)-th request) into b; false when that thread
 * has no lines left. */
static bool build(const struct gen *g, uint64_t i, struct vg_buf *b, struct bench_req *r)
{
    uint64_t k = i % g->conc, first = i / g->conc * g->batch, have = thread_lines(g, k);
    if (first >= have)
        return false;
    uint64_t n = have - first < g->batch ? have - first : g->batch;
    uint64_t *idx = vg_malloc(n * sizeof *idx);
    if (!idx) {
        fprintf(stderr, "loggen: out of memory\n");
        exit(2);
    }
    for (uint64_t m = 0; m < n; m++)
        idx[m] = k + g->conc * (first + m);
    vg_buf_reset(b);
    r->bytes = g->fmt == FMT_LOKI_JSON ? json_request(g, idx, n, b) : pb_request(g, idx, n, b);
    vg_free(idx);
    if (vg_buf_failed(b)) {
        fprintf(stderr, "loggen: out of memory\n");
        exit(2);
    }
    r->body = b->p;
    r->len = b->len;
    r->items = n;
    return true;
}

static int next_req(void *arg, int k, uint64_t i, struct bench_req *r)
{
    struct gen *g = arg;
    if (g->pre)
        *r = g->table[i];
    else if (!build(g, i, &g->tbuf[k], r))
        return -1;
    return r->items ? 0 : -1;
}

/* ---- main ---- */

static void usage(void)
{
    fprintf(stderr,
            "usage: loggen --mb N [--format loki-json|loki-pb|otlp] [--url URL]\n"
            "              [--concurrency K] [--batch LINES] [--streams S] [--span-s S]\n"
            "              [--end-ns NS] [--preencode] [--max-seconds S]\n"
            "       loggen --mb N --write-raw FILE [--streams S]\n"
            "See the top of bench/loggen.c.\n");
    exit(2);
}

static int write_raw(const struct gen *g, const char *file)
{
    FILE *f = fopen(file, "w");
    char line[MAX_LINE + 1];
    if (!f) {
        perror(file);
        return 1;
    }
    for (uint64_t i = 0; i < g->lines; i++) {
        int n = make_line(line, MAX_LINE, i, line_time(g, i));
        line[n] = '\n';
        if (fwrite(line, 1, (size_t)n + 1, f) != (size_t)n + 1) {
            perror(file);
            (void)fclose(f);
            return 1;
        }
    }
    if (fclose(f) != 0) {
        perror(file);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "mb", required_argument, NULL, 'm' },        { "format", required_argument, NULL, 'f' },
        { "url", required_argument, NULL, 'u' },       { "concurrency", required_argument, NULL, 'c' },
        { "batch", required_argument, NULL, 'b' },     { "streams", required_argument, NULL, 's' },
        { "span-s", required_argument, NULL, 'S' },    { "end-ns", required_argument, NULL, 'e' },
        { "preencode", no_argument, NULL, 'p' },       { "max-seconds", required_argument, NULL, 'x' },
        { "write-raw", required_argument, NULL, 'w' }, { "help", no_argument, NULL, 'h' },
        { 0, 0, 0, 0 }
    };
    struct gen g = { .fmt = FMT_LOKI_JSON, .batch = 1000, .streams = 4 };
    struct bench_http_tr tr = { .url = "" };
    double mb = 0, span_s = 4 * 3600, max_s = 3600;
    int conc = 4;
    int64_t end_ns = 0;
    const char *raw = NULL;
    int o;
    while ((o = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (o) {
        case 'm': mb = bench_arg_double("--mb", optarg); break;
        case 'f':
            if (!strcmp(optarg, "loki-json"))
                g.fmt = FMT_LOKI_JSON;
            else if (!strcmp(optarg, "loki-pb"))
                g.fmt = FMT_LOKI_PB;
            else if (!strcmp(optarg, "otlp"))
                g.fmt = FMT_OTLP;
            else
                usage();
            break;
        case 'u': snprintf(tr.url, sizeof tr.url, "%s", optarg); break;
        case 'c': conc = (int)bench_arg_int("--concurrency", optarg); break;
        case 'b': g.batch = (uint64_t)bench_arg_int("--batch", optarg); break;
        case 's': g.streams = (int)bench_arg_int("--streams", optarg); break;
        case 'S': span_s = bench_arg_double("--span-s", optarg); break;
        case 'e': end_ns = bench_arg_int("--end-ns", optarg); break;
        case 'p': g.pre = true; break;
        case 'x': max_s = bench_arg_double("--max-seconds", optarg); break;
        case 'w': raw = optarg; break;
        default: usage();
        }
    }
    if (mb <= 0 || conc < 1 || conc > 256 || g.batch < 1 || g.streams < 1 ||
        g.streams > MAX_STREAMS || span_s <= 0 || (!raw && !tr.url[0]))
        usage();
    if (g.streams % conc != 0) {
        fprintf(stderr, "loggen: --streams (%d) must be a multiple of --concurrency (%d)\n",
                g.streams, conc);
        return 2;
    }
    if (!end_ns)
        end_ns = ((int64_t)time(NULL) - 60) * 1000000000LL;
    g.lines = count_lines(mb);
    g.dt_num = (int64_t)(span_s * 1e9);
    g.dt_den = (int64_t)g.lines;
    g.t0 = end_ns - g.dt_num;
    printf("LINES=%" PRIu64 "\nNEEDLE_ID=%016" PRIx64 "\n", g.lines, request_id(g.lines / 2));
    (void)fflush(stdout);
    if (raw)
        return write_raw(&g, raw);

    g.conc = (uint64_t)conc;
    uint64_t nreq = g.conc * ((thread_lines(&g, 0) + g.batch - 1) / g.batch);
    static const char *const hdr[] = {
        [FMT_LOKI_JSON] = "Content-Type: application/json\r\n",
        [FMT_LOKI_PB] = "Content-Type: application/x-protobuf\r\n",
        [FMT_OTLP] = "Content-Type: application/x-protobuf\r\n",
    };
    tr.headers = hdr[g.fmt];
    g.tbuf = calloc((size_t)conc, sizeof *g.tbuf);
    g.table = g.pre ? calloc(nreq ? nreq : 1, sizeof *g.table) : NULL;
    struct bench_load l = { .threads = conc, .requests = nreq, .max_seconds = max_s,
                            .gen = &g, .next = next_req, .tr = &tr, .open = bench_http_open,
                            .send = bench_http_send, .close = bench_http_free };
    int rc = 0;
    if (!g.tbuf || (g.pre && !g.table)) {
        fprintf(stderr, "loggen: out of memory\n");
        rc = 2;
    }
    for (uint64_t i = 0; g.table && i < nreq; i++) {
        struct vg_buf b;
        vg_buf_init(&b);
        if (build(&g, i, &b, &g.table[i]))
            g.table[i].body = vg_buf_steal(&b, &g.table[i].len);
        vg_buf_free(&b);
    }
    if (!rc && g.pre)
        fprintf(stderr, "loggen: %" PRIu64 " requests encoded\n", nreq);
    if (!rc && bench_load_run(&l) < 0) {
        fprintf(stderr, "loggen: could not start the threads\n");
        rc = 2;
    }
    if (!rc) {
        bench_load_report(&l);
        rc = l.failed ? 1 : 0;
    }
    free(l.lat_ms);
    for (int k = 0; g.tbuf && k < conc; k++)
        vg_buf_free(&g.tbuf[k]);
    free(g.tbuf);
    for (uint64_t i = 0; g.table && i < nreq; i++)
        vg_free(bench_unconst(g.table[i].body));
    free(g.table);
    return rc;
}
