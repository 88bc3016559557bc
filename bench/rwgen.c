/* rwgen: a Prometheus remote-write 1.0 load generator.
 *
 * It makes N series with label sets shaped like a real scrape (job, instance, method,
 * status, path, le, cpu, mode, device, mountpoint), counters and gauges, S samples per
 * series at a fixed scrape interval, and sends them to a remote-write endpoint (Vigil,
 * Prometheus with --web.enable-remote-write-receiver, VictoriaMetrics) over keep-alive
 * HTTP/1.1 connections from K threads. Every request body is encoded and snappy-compressed
 * before the timed phase, so the measurement is the receiver's, not ours.
 *
 * Invariants:
 *  - Series i belongs to thread i % K. A thread sends its cells (series, step) in
 *    step-major order, so each series' samples arrive in time order even with K threads:
 *    no receiver sees an out-of-order sample.
 *  - A request holds `batch` consecutive cells of one thread; a series that has several
 *    cells in one request becomes one TimeSeries with several samples.
 *  - Batch ids are global: thread 0's batches are 0..b0-1, thread 1's follow, etc. The
 *    plan depends only on the flags, so --print-acked rebuilds it exactly.
 *  - Values are integers (counters grow by 1..7 per step, gauges move by multiples of
 *    4096), so every printed value round-trips through any float formatting.
 *  - With --cumulative-buckets the ten http_request_duration_seconds_bucket series of one
 *    (instance, method, path) form a real histogram: bucket k (le index 0..9) holds
 *    (k + 1) times the first bucket's counter, so counts never fall as le grows and
 *    histogram_quantile needs no monotonicity fix-ups. Without it every bucket is an
 *    independent counter (the values of earlier runs).
 *  - --step-offset N gives the run's first sample the value of step N (timestamps still
 *    start at --start), so consecutive runs continue the same counters without resets.
 *
 * Formats written:
 *  - --ack-log FILE: one line per request answered 2xx, appended and flushed right after
 *    the answer: "<batch_id> <first_ts_ms> <last_ts_ms> <nseries>\n".
 *  - --print-acked FILE: every sample of every batch named in FILE, one per line, as
 *    `vigil tsdb dump` prints them: `name{l1="v1",...} <value> <timestamp_ms>`, labels
 *    sorted by name. Nothing is sent in this mode.
 *  - stdout after a run: human-readable lines, then one line
 *    "RESULT samples_per_sec=<f> p50_ms=<f> p90_ms=<f> p99_ms=<f> max_ms=<f>
 *     acked_samples=<n> failed_requests=<n> elapsed_s=<f>" for scripts.
 *
 * Safety: only loopback targets (127.0.0.0/8, ::1) are accepted; every retry loop and the
 * whole run are bounded (--retries, --max-errors, --max-seconds, --timeout-ms). */
#include "../storage/base/vg_alloc.h"
#include "../storage/base/vg_buf.h"
#include "bench_load.h"
#include "prom_remote_write.pb-c.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <snappy-c.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_LABELS 8
#define RW_HEADERS                                                                       \
    "Content-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\n"               \
    "X-Prometheus-Remote-Write-Version: 0.1.0\r\n"
#define SERIES_PER_HOST 100

struct opts {
    struct bench_http http; /* host and port of --url; each worker connects with a copy */
    char path[512];
    long series;
    long samples;
    long batch;
    long conc;
    int64_t start_ms;
    int64_t interval_ms;
    long step_offset;
    const char *ack_log;
    const char *print_acked;
    long retries;
    long max_errors;
    long timeout_ms;
    double max_seconds;
    bool quiet;
};

/* One series: its sorted labels and whether it is a counter. */
struct series {
    Prometheus__Label lab[MAX_LABELS];
    Prometheus__Label *labp[MAX_LABELS];
    size_t nlab;
    bool counter;
};

struct request {
    uint8_t *body; /* snappy-compressed WriteRequest */
    size_t len;
    uint64_t id;
    int64_t first_ts, last_ts;
    uint32_t nseries, nsamples;
};

struct worker {
    const struct opts *o;
    int k;
    struct request *reqs;
    size_t nreqs;
    /* results */
    uint64_t acked_samples;
    uint64_t failed;
    uint64_t *lat_ns;
    size_t nlat, cap_lat;
    pthread_t th;
};

static struct series *g_series;
static pthread_mutex_t g_ack_mu = PTHREAD_MUTEX_INITIALIZER;
static FILE *g_ack;
static pthread_barrier_t g_start;
static bool g_cumulative_buckets;
static int64_t g_deadline_ns;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "rwgen: %s\n", what);
    exit(2);
}

static void *xmalloc(size_t n)
{
    void *p = vg_malloc(n ? n : 1);
    if (!p)
        die("out of memory");
    return p;
}

static char *xstrdup(const char *s)
{
    char *p = vg_strdup(s);
    if (!p)
        die("out of memory");
    return p;
}

/* ---- the data set ---- */

static const char *const k_jobs[] = {"api", "worker", "db", "frontend", "cache"};
static const char *const k_methods[] = {"GET", "POST", "PUT", "DELETE"};
static const char *const k_status[] = {"200", "201", "404", "500", "503"};
static const char *const k_paths[] = {"/api/v1/users", "/api/v1/orders"};
static const char *const k_le[] = {"0.005", "0.01", "0.025", "0.05", "0.1",
                                   "0.25", "0.5", "1", "2.5", "+Inf"};
static const char *const k_modes[] = {"user", "system"};

static void add_label(struct series *s, const char *name, const char *value)
{
    Prometheus__Label *l = &s->lab[s->nlab];
    prometheus__label__init(l);
    l->name = xstrdup(name);
    l->value = xstrdup(value);
    s->labp[s->nlab] = l;
    s->nlab++;
}

static int label_cmp(const void *a, const void *b)
{
    const Prometheus__Label *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

/* Series i: host i/100, then 100 series per host spread over five families so that
 * every label set is distinct. */
static void make_series(long i, struct series *s)
{
    char buf[64];
    long host = i / SERIES_PER_HOST, local = i % SERIES_PER_HOST;
    memset(s, 0, sizeof *s);
    snprintf(buf, sizeof buf, "host-%05ld:9100", host);
    add_label(s, "instance", buf);
    add_label(s, "job", k_jobs[host % 5]);
    s->counter = true;
    if (local < 40) {
        add_label(s, "__name__", "http_requests_total");
        add_label(s, "method", k_methods[local % 4]);
        add_label(s, "status", k_status[(local / 4) % 5]);
        add_label(s, "path", k_paths[local / 20]);
    } else if (local < 80) {
        long j = local - 40;
        add_label(s, "__name__", "http_request_duration_seconds_bucket");
        add_label(s, "le", k_le[j % 10]);
        add_label(s, "method", k_methods[(j / 10) % 2]);
        add_label(s, "path", k_paths[j / 20]);
    } else if (local < 90) {
        long j = local - 80;
        add_label(s, "__name__", "node_cpu_seconds_total");
        snprintf(buf, sizeof buf, "%ld", j / 2);
        add_label(s, "cpu", buf);
        add_label(s, "mode", k_modes[j % 2]);
    } else {
        long j = local - 90;
        s->counter = false;
        add_label(s, "__name__", "node_filesystem_avail_bytes");
        snprintf(buf, sizeof buf, "/dev/sd%c1", (char)('a' + j));
        add_label(s, "device", buf);
        snprintf(buf, sizeof buf, "/mnt/disk%ld", j);
        add_label(s, "mountpoint", buf);
    }
    qsort(s->labp, s->nlab, sizeof s->labp[0], label_cmp);
}

static double value_at(long i, long step)
{
    long local = i % SERIES_PER_HOST;
    if (g_cumulative_buckets && local >= 40 && local < 80) {
        long k = (local - 40) % 10, first = i - k; /* le index, series of the first bucket */
        return (double)(((first % 1000) * 10 + step * (1 + first % 7)) * (k + 1));
    }
    if (g_series[i].counter)
        return (double)((i % 1000) * 10 + step * (1 + i % 7));
    return (double)(1048576 + ((step * 31 + i * 17) % 1000) * 4096);
}

/* ---- the plan: which cells each batch holds ---- */

static long thread_nseries(const struct opts *o, long k)
{
    return o->series / o->conc + (k < o->series % o->conc ? 1 : 0);
}

static size_t thread_nbatches(const struct opts *o, long k)
{
    long cells = thread_nseries(o, k) * o->samples;
    return (size_t)((cells + o->batch - 1) / o->batch);
}

/* Calls fn(series, step, arg) for every cell of batch b of thread k, in send order. */
static void for_each_cell(const struct opts *o, long k, size_t b,
                          void (*fn)(long series, long step, void *arg), void *arg)
{
    long nk = thread_nseries(o, k);
    long c0 = (long)b * o->batch, c1 = c0 + o->batch;
    if (c1 > nk * o->samples)
        c1 = nk * o->samples;
    for (long c = c0; c < c1; c++)
        fn(k + (c % nk) * o->conc, c / nk, arg);
}

/* Builds one batch's WriteRequest in the arrays of enc, then packs and compresses it.
 * The arrays are sized for one batch and reused; slot_of is all -1 between calls. */
struct encoder {
    const struct opts *o;
    long *slot_of;           /* series -> TimeSeries index in this batch, or -1 */
    Prometheus__TimeSeries *ts;
    Prometheus__TimeSeries **tsp;
    Prometheus__Sample *smp;
    Prometheus__Sample **smpp; /* per-series runs of sample pointers */
    size_t *fill;
    long *cell_series, *cell_step;
    size_t ncells, nts;
    struct vg_buf pb;
};

static void collect_cell(long series, long step, void *arg)
{
    struct encoder *e = arg;
    e->cell_series[e->ncells] = series;
    e->cell_step[e->ncells] = step;
    e->ncells++;
}

static void encode_batch(struct encoder *e, long k, size_t b, struct request *r)
{
    const struct opts *o = e->o;
    e->ncells = 0;
    e->nts = 0;
    for_each_cell(o, k, b, collect_cell, e);
    /* Pass 1: one TimeSeries per distinct series, counting its samples. */
    for (size_t c = 0; c < e->ncells; c++) {
        long s = e->cell_series[c];
        if (e->slot_of[s] < 0) {
            Prometheus__TimeSeries *t = &e->ts[e->nts];
            prometheus__time_series__init(t);
            t->labels = g_series[s].labp;
            t->n_labels = g_series[s].nlab;
            e->tsp[e->nts] = t;
            e->fill[e->nts] = 0;
            e->slot_of[s] = (long)e->nts++;
        }
        e->fill[e->slot_of[s]]++;
    }
    /* Each series gets a contiguous run of sample pointers. */
    size_t off = 0;
    for (size_t t = 0; t < e->nts; t++) {
        e->ts[t].samples = e->smpp + off;
        off += e->fill[t];
    }
    /* Pass 2: samples, in time order within each series since cells are step-major. */
    r->first_ts = INT64_MAX;
    r->last_ts = INT64_MIN;
    for (size_t c = 0; c < e->ncells; c++) {
        long s = e->cell_series[c], step = e->cell_step[c];
        Prometheus__TimeSeries *t = &e->ts[e->slot_of[s]];
        Prometheus__Sample *x = &e->smp[c];
        prometheus__sample__init(x);
        x->timestamp = o->start_ms + step * o->interval_ms;
        x->value = value_at(s, o->step_offset + step);
        t->samples[t->n_samples++] = x;
        if (x->timestamp < r->first_ts)
            r->first_ts = x->timestamp;
        if (x->timestamp > r->last_ts)
            r->last_ts = x->timestamp;
    }
    Prometheus__WriteRequest wr = PROMETHEUS__WRITE_REQUEST__INIT;
    wr.timeseries = e->tsp;
    wr.n_timeseries = e->nts;
    size_t plen = prometheus__write_request__get_packed_size(&wr);
    vg_buf_reset(&e->pb);
    if (!vg_buf_reserve(&e->pb, plen + 1))
        die("out of memory");
    prometheus__write_request__pack(&wr, (uint8_t *)e->pb.p);
    size_t clen = snappy_max_compressed_length(plen);
    r->body = xmalloc(clen);
    if (snappy_compress(e->pb.p, plen, (char *)r->body, &clen) != SNAPPY_OK)
        die("snappy_compress failed");
    r->len = clen;
    r->nseries = (uint32_t)e->nts;
    r->nsamples = (uint32_t)e->ncells;
    for (size_t c = 0; c < e->ncells; c++)
        e->slot_of[e->cell_series[c]] = -1;
}

/* ---- workers ---- */

static void record_latency(struct worker *w, uint64_t ns)
{
    if (w->nlat == w->cap_lat)
        return;
    w->lat_ns[w->nlat++] = ns;
}

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    const struct opts *o = w->o;
    struct bench_http *c = xmalloc(sizeof *c);
    *c = o->http;
    char msg[512];
    long consecutive = 0;
    bool reported = false;
    pthread_barrier_wait(&g_start);
    for (size_t i = 0; i < w->nreqs; i++) {
        const struct request *r = &w->reqs[i];
        int status = -1;
        for (long a = 0; a <= o->retries; a++) {
            if (now_ns() > g_deadline_ns)
                break;
            if (a > 0)
                nanosleep(&(struct timespec){0, 100000000}, NULL);
            int64_t t0 = now_ns();
            status = bench_http_post(c, o->path, RW_HEADERS, r->body, r->len, msg, sizeof msg);
            if (status > 0)
                record_latency(w, (uint64_t)(now_ns() - t0));
            /* 4xx other than 429 will not get better by retrying. */
            if ((status >= 200 && status < 300) ||
                (status >= 400 && status < 500 && status != 429))
                break;
        }
        if (status >= 200 && status < 300) {
            consecutive = 0;
            w->acked_samples += r->nsamples;
            if (g_ack) {
                pthread_mutex_lock(&g_ack_mu);
                fprintf(g_ack, "%" PRIu64 " %" PRId64 " %" PRId64 " %" PRIu32 "\n", r->id,
                        r->first_ts, r->last_ts, r->nseries);
                if (fflush(g_ack) != 0) {
                    perror("rwgen: ack log");
                    exit(1); /* an ack the crash test cannot read is worse than stopping */
                }
                pthread_mutex_unlock(&g_ack_mu);
            }
            continue;
        }
        w->failed++;
        consecutive++;
        if (!reported && !o->quiet) {
            reported = true;
            fprintf(stderr, "rwgen: thread %d batch %" PRIu64 ": %s %d: %.300s\n", w->k, r->id,
                    status < 0 ? "transport error" : "HTTP", status, msg);
        }
        if (consecutive >= o->max_errors || now_ns() > g_deadline_ns) {
            w->failed += w->nreqs - i - 1;
            break;
        }
    }
    bench_http_close(c);
    vg_free(c);
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_ms(const uint64_t *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return (double)v[i] / 1e6;
}

/* ---- --print-acked ---- */

struct printer {
    const struct opts *o;
    FILE *out;
    struct vg_buf line;
};

static void print_cell(long s, long step, void *arg)
{
    struct printer *p = arg;
    const struct series *se = &g_series[s];
    const char *name = "";
    vg_buf_reset(&p->line);
    for (size_t l = 0; l < se->nlab; l++)
        if (!strcmp(se->labp[l]->name, "__name__"))
            name = se->labp[l]->value;
    vg_buf_puts(&p->line, name);
    vg_buf_putc(&p->line, '{');
    bool first = true;
    for (size_t l = 0; l < se->nlab; l++) {
        if (!strcmp(se->labp[l]->name, "__name__"))
            continue;
        vg_buf_printf(&p->line, "%s%s=\"%s\"", first ? "" : ",", se->labp[l]->name,
                      se->labp[l]->value);
        first = false;
    }
    vg_buf_puts(&p->line, "} ");
    vg_buf_prom_float(&p->line, value_at(s, p->o->step_offset + step));
    vg_buf_printf(&p->line, " %" PRId64 "\n", p->o->start_ms + step * p->o->interval_ms);
    if (fwrite(p->line.p, 1, p->line.len, p->out) != p->line.len)
        perror("rwgen: write");
}

/* Reads the batch ids of an ack log into a bitmap of nbatches entries. */
static bool *read_acked(const char *path, size_t nbatches)
{
    FILE *f = fopen(path, "r");
    if (!f)
        die("cannot open the ack log given to --print-acked");
    bool *acked = vg_calloc(nbatches ? nbatches : 1, sizeof *acked);
    if (!acked)
        die("out of memory");
    char line[256];
    while (fgets(line, sizeof line, f)) {
        char *end;
        unsigned long long id = strtoull(line, &end, 10);
        if (end == line || *end != ' ')
            continue; /* a line torn by a crash of the writer */
        if (id >= nbatches) {
            fprintf(stderr, "rwgen: ack log names batch %llu but the plan has %zu batches: "
                            "were the same flags given?\n", id, nbatches);
            exit(2);
        }
        acked[id] = true;
    }
    (void)fclose(f);
    return acked;
}

static int print_acked(const struct opts *o)
{
    size_t total = 0;
    for (long k = 0; k < o->conc; k++)
        total += thread_nbatches(o, k);
    bool *acked = read_acked(o->print_acked, total);
    struct printer p = {.o = o, .out = stdout};
    vg_buf_init(&p.line);
    size_t id = 0;
    for (long k = 0; k < o->conc; k++)
        for (size_t b = 0; b < thread_nbatches(o, k); b++, id++)
            if (acked[id])
                for_each_cell(o, k, b, print_cell, &p);
    vg_buf_free(&p.line);
    vg_free(acked);
    return fflush(stdout) == 0 ? 0 : 2;
}

/* ---- main ---- */

static void usage(void)
{
    fputs("usage: rwgen [options]\n"
          "  --url URL            remote-write endpoint, http://127.0.0.1:4318/api/v1/write\n"
          "                       (loopback addresses only)\n"
          "  --series N           number of series (default 1000)\n"
          "  --samples N          samples per series (default 10)\n"
          "  --batch N            samples per request (default 500)\n"
          "  --concurrency K      sending threads, one keep-alive connection each (default 2)\n"
          "  --start MS|now       timestamp of the first sample in ms (default: now minus\n"
          "                       samples*interval, so the last sample is about now)\n"
          "  --interval MS        scrape interval between a series' samples (default 15000)\n"
          "  --ack-log FILE       append \"batch_id first_ts last_ts nseries\" per 2xx answer\n"
          "  --print-acked FILE   print the samples of the batches in an ack log (same flags\n"
          "                       as the run that wrote it) and send nothing\n"
          "  --retries N          retries of a failed request (default 2)\n"
          "  --max-errors N       a thread stops after N failed requests in a row (default 5)\n"
          "  --timeout-ms N       socket timeout per request (default 10000)\n"
          "  --max-seconds S      stop sending after S seconds (default 600)\n"
          "  --quiet              no progress lines, only the RESULT line\n"
          "  --step-offset N      values start at those of step N (continue an earlier run)\n"
          "  --cumulative-buckets the le buckets of each histogram count cumulatively (a\n"
          "                       real histogram) instead of as independent counters\n",
          stderr);
    exit(2);
}

static long parse_long(const char *s, long min, long max, const char *flag)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "rwgen: %s: want an integer in [%ld, %ld], got \"%s\"\n", flag, min,
                max, s);
        exit(2);
    }
    return v;
}

static void parse_url(struct opts *o, const char *url)
{
    if (bench_http_url(&o->http, url, o->path, sizeof o->path) < 0)
        die("--url: want http://HOST[:PORT]/path (HOST a name, an IPv4 or a [IPv6] address)");
}

static void parse_opts(struct opts *o, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"url", required_argument, 0, 'u'},        {"series", required_argument, 0, 'n'},
        {"samples", required_argument, 0, 's'},    {"batch", required_argument, 0, 'b'},
        {"concurrency", required_argument, 0, 'c'}, {"start", required_argument, 0, 'S'},
        {"interval", required_argument, 0, 'i'},   {"ack-log", required_argument, 0, 'a'},
        {"print-acked", required_argument, 0, 'p'}, {"retries", required_argument, 0, 'r'},
        {"max-errors", required_argument, 0, 'e'}, {"timeout-ms", required_argument, 0, 't'},
        {"max-seconds", required_argument, 0, 'm'}, {"quiet", no_argument, 0, 'q'},
        {"cumulative-buckets", no_argument, 0, 'B'}, {"step-offset", required_argument, 0, 'o'},
        {"help", no_argument, 0, 'h'},             {0, 0, 0, 0},
    };
    const char *start = NULL;
    memset(o, 0, sizeof *o);
    parse_url(o, "http://127.0.0.1:4318/api/v1/write");
    o->series = 1000;
    o->samples = 10;
    o->batch = 500;
    o->conc = 2;
    o->interval_ms = 15000;
    o->retries = 2;
    o->max_errors = 5;
    o->timeout_ms = 10000;
    o->max_seconds = 600;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'u': parse_url(o, optarg); break;
        case 'n': o->series = parse_long(optarg, 1, 50000000, "--series"); break;
        case 's': o->samples = parse_long(optarg, 1, 1000000, "--samples"); break;
        case 'b': o->batch = parse_long(optarg, 1, 1000000, "--batch"); break;
        case 'c': o->conc = parse_long(optarg, 1, 256, "--concurrency"); break;
        case 'S': start = optarg; break;
        case 'i': o->interval_ms = parse_long(optarg, 1, 86400000, "--interval"); break;
        case 'a': o->ack_log = optarg; break;
        case 'p': o->print_acked = optarg; break;
        case 'r': o->retries = parse_long(optarg, 0, 100, "--retries"); break;
        case 'e': o->max_errors = parse_long(optarg, 1, 1000000, "--max-errors"); break;
        case 't': o->timeout_ms = parse_long(optarg, 1, 600000, "--timeout-ms"); break;
        case 'm': o->max_seconds = (double)parse_long(optarg, 1, 86400, "--max-seconds"); break;
        case 'q': o->quiet = true; break;
        case 'B': g_cumulative_buckets = true; break;
        case 'o': o->step_offset = parse_long(optarg, 0, 100000000, "--step-offset"); break;
        default: usage();
        }
    }
    if (optind != argc)
        usage();
    o->http.timeout_ms = (int)o->timeout_ms;
    if (o->conc > o->series)
        o->conc = o->series;
    if (start && strcmp(start, "now") != 0) {
        char *end;
        errno = 0;
        o->start_ms = strtoll(start, &end, 10);
        if (errno || end == start || *end || o->start_ms < 0)
            die("--start: want milliseconds since the epoch or \"now\"");
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        o->start_ms = start ? now : now - (o->samples - 1) * o->interval_ms;
        o->start_ms -= o->start_ms % 1000; /* whole seconds read better in dumps */
    }
}

static void build_series(const struct opts *o)
{
    g_series = xmalloc((size_t)o->series * sizeof *g_series);
    for (long i = 0; i < o->series; i++)
        make_series(i, &g_series[i]);
}

/* Encodes every batch of every thread; returns the total compressed bytes. */
static size_t build_requests(const struct opts *o, struct worker *ws)
{
    struct encoder e = {.o = o};
    size_t b = (size_t)o->batch, total = 0;
    e.slot_of = xmalloc((size_t)o->series * sizeof *e.slot_of);
    for (long i = 0; i < o->series; i++)
        e.slot_of[i] = -1;
    e.ts = xmalloc(b * sizeof *e.ts);
    e.tsp = xmalloc(b * sizeof *e.tsp);
    e.smp = xmalloc(b * sizeof *e.smp);
    e.smpp = xmalloc(b * sizeof *e.smpp);
    e.fill = xmalloc(b * sizeof *e.fill);
    e.cell_series = xmalloc(b * sizeof *e.cell_series);
    e.cell_step = xmalloc(b * sizeof *e.cell_step);
    vg_buf_init(&e.pb);
    uint64_t id = 0;
    for (long k = 0; k < o->conc; k++) {
        struct worker *w = &ws[k];
        w->nreqs = thread_nbatches(o, k);
        w->reqs = xmalloc(w->nreqs * sizeof *w->reqs);
        for (size_t j = 0; j < w->nreqs; j++) {
            w->reqs[j].id = id++;
            encode_batch(&e, k, j, &w->reqs[j]);
            total += w->reqs[j].len;
        }
    }
    vg_buf_free(&e.pb);
    vg_free(e.slot_of);
    vg_free(e.ts);
    vg_free(e.tsp);
    vg_free(e.smp);
    vg_free(e.smpp);
    vg_free(e.fill);
    vg_free(e.cell_series);
    vg_free(e.cell_step);
    return total;
}

int main(int argc, char **argv)
{
    struct opts o;
    /* A server that closes mid-request (or is killed) must cost one failed request, not
     * the process: write errors come back as EPIPE instead. */
    signal(SIGPIPE, SIG_IGN);
    parse_opts(&o, argc, argv);
    build_series(&o);
    if (o.print_acked)
        return print_acked(&o);

    int64_t t_enc = now_ns();
    struct worker *ws = vg_calloc((size_t)o.conc, sizeof *ws);
    if (!ws)
        die("out of memory");
    size_t bytes = build_requests(&o, ws);
    size_t nreq = 0;
    for (long k = 0; k < o.conc; k++) {
        ws[k].o = &o;
        ws[k].k = (int)k;
        ws[k].cap_lat = ws[k].nreqs * (size_t)(o.retries + 1);
        ws[k].lat_ns = xmalloc(ws[k].cap_lat * sizeof *ws[k].lat_ns);
        nreq += ws[k].nreqs;
    }
    if (!o.quiet)
        printf("rwgen: %ld series x %ld samples, %zu requests of <= %ld samples, %zu bytes "
               "snappy, %ld connections, encoded in %.2f s\n",
               o.series, o.samples, nreq, o.batch, bytes, o.conc,
               (double)(now_ns() - t_enc) / 1e9);
    if (o.ack_log && !(g_ack = fopen(o.ack_log, "a")))
        die("cannot open the --ack-log file");

    pthread_barrier_init(&g_start, NULL, (unsigned)o.conc + 1);
    for (long k = 0; k < o.conc; k++)
        if (pthread_create(&ws[k].th, NULL, worker_run, &ws[k]) != 0)
            die("pthread_create failed");
    int64_t t0 = now_ns();
    g_deadline_ns = t0 + (int64_t)(o.max_seconds * 1e9);
    pthread_barrier_wait(&g_start);
    uint64_t acked = 0, failed = 0;
    size_t nlat = 0;
    for (long k = 0; k < o.conc; k++) {
        pthread_join(ws[k].th, NULL);
        acked += ws[k].acked_samples;
        failed += ws[k].failed;
        nlat += ws[k].nlat;
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    if (g_ack)
        (void)fclose(g_ack);

    uint64_t *lat = xmalloc(nlat * sizeof *lat);
    size_t n = 0;
    for (long k = 0; k < o.conc; k++) {
        memcpy(lat + n, ws[k].lat_ns, ws[k].nlat * sizeof *lat);
        n += ws[k].nlat;
    }
    qsort(lat, nlat, sizeof *lat, cmp_u64);
    double rate = secs > 0 ? (double)acked / secs : 0;
    if (!o.quiet)
        printf("rwgen: %" PRIu64 " samples acknowledged in %.3f s (%.0f samples/s), "
               "%" PRIu64 " requests failed; latency ms p50 %.2f p90 %.2f p99 %.2f max %.2f\n",
               acked, secs, rate, failed, pct_ms(lat, nlat, 0.5), pct_ms(lat, nlat, 0.9),
               pct_ms(lat, nlat, 0.99), pct_ms(lat, nlat, 1.0));
    printf("RESULT samples_per_sec=%.0f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f "
           "acked_samples=%" PRIu64 " failed_requests=%" PRIu64 " elapsed_s=%.3f\n",
           rate, pct_ms(lat, nlat, 0.5), pct_ms(lat, nlat, 0.9), pct_ms(lat, nlat, 0.99),
           pct_ms(lat, nlat, 1.0), acked, failed, secs);
    (void)fflush(stdout);
    /* The process exits now; the plan's memory goes with it. */
    return failed ? 1 : 0;
}
